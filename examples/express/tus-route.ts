// Resumable uploads (tus 1.0) at `/files`, with the same auth and limits as `/detect`. The final
// response carries the media once detection has started (its AIProcessing recorded in this
// process, or its job enqueued), and where to poll for its end (`GET /detections/:jobId`, the
// job's ID the media ID in this process). A HEAD or the sweep that finishes an upload starts its detection too.
import { Router } from "express";
import { createTusIntake, type TusIntake } from "../../src/tus/index.ts";
import type { AppContext } from "./context.ts";
import type { DetectionRuns } from "./detection-runs.ts";

export function tusRoute(context: AppContext, runs: DetectionRuns): { tus: TusIntake; routes: Router } {
  const { auth, authorize, queue, config } = context;
  const tus = createTusIntake({
    path: "/files",
    ...context.intake,
    ...(auth ? { auth } : {}),
    ...(config.tusLocker ? { locker: config.tusLocker } : {}),
    ...(config.tusUploadsDir ? { uploadsDir: config.tusUploadsDir } : {}),
    ...(config.tusExpireAfterMs ? { expireAfterMs: config.tusExpireAfterMs } : {}),
    onMediaIntaken: async (media, { token, userId }) => {
      // A second upload of another user's content: the record and its detection are theirs.
      if (!(await authorize(Object.freeze({ ...media }), Object.freeze({ userId, token: token ?? "" })))) return { detection: {} };
      if (queue) {
        const { id, path, mediaType, name, userId } = media;
        const { jobId } = await queue.detections.enqueue({ id, path, mediaType, name, userId });
        return { detection: { jobId, poll: `/detections/${jobId}` } };
      }
      // The run outlives the request: its statuses land whatever the client does next. Its poll
      // answers as the queue's does, the media ID for the job's.
      await runs.startDetection(media, token);
      return { detection: { jobId: media.id, poll: `/detections/${media.id}` } };
    },
  });
  const routes = Router();
  // A PATCH in flight is work the stop's cut waits for (its bytes written up to where it stopped).
  routes.all(["/files", "/files/*splat"], (req, res) => void context.inFlight.track(tus.handle(req, res)));
  return { tus, routes };
}
