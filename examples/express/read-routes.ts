// The reads: `GET /media/:mediaId` (a record, for who may see it) and `GET /detections/:jobId`
// (where an upload's answer says to poll: the job's state, its detections once done, and the
// media record). With the queue a job is BullMQ's; without it, the job of a media is its media
// ID, its state the record's status and its detections those of the last run in this process.
import { Router } from "express";
import { isMediaIntakeError, type MediaRecord, MediaStatus, normalizeMediaId } from "../../src/index.ts";
import { AppError, jobNotFound } from "./authorize.ts";
import type { AppContext } from "./context.ts";
import type { DetectionRuns } from "./detection-runs.ts";

/** The state of a local run, as the queue names a job's: from the record's status. */
function localState(status: MediaRecord["mediaStatus"]): "waiting" | "active" | "completed" | "failed" {
  if (status === MediaStatus.New) return "waiting";
  if (status === MediaStatus.AIProcessing) return "active";
  if (status === MediaStatus.Error) return "failed";
  // AIProcessed, or a later stage of the annotations service's own.
  return "completed";
}

export function readRoutes(context: AppContext, runs: DetectionRuns): Router {
  const { queue, callerOf, authorizedRecord } = context;
  const routes = Router();

  routes.get("/media/:mediaId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      res.json(await authorizedRecord(req, caller, normalizeMediaId(req.params.mediaId)));
    } catch (error) {
      next(error);
    }
  });

  routes.get("/detections/:jobId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      const { jobId } = req.params;
      // The job of a media is its owner's: the record is read first, so that another user's job
      // answers exactly as one that never was. Without the queue a rerun has no job of its own.
      if (!(queue ? /^[0-9a-f]{16}(-rerun-[0-9a-f]{32})?$/ : /^[0-9a-f]{16}$/).test(jobId)) throw jobNotFound(jobId);
      const media = await authorizedRecord(req, caller, jobId.slice(0, 16), () => jobNotFound(jobId));
      if (!queue) {
        const state = localState(media.mediaStatus);
        const run = runs.lastRun(media.id);
        return void res.json({
          media,
          detection: {
            jobId,
            state,
            ...(state === "completed" && run && "detections" in run ? { detections: run.detections } : {}),
            ...(state === "failed" && run && "error" in run ? { error: { code: "DETECTION_FAILED", message: run.error } } : {}),
          },
        });
      }
      const job = await queue.detections.state(jobId).catch((error: unknown) => {
        // A read: nothing to keep or lose, only the job's state not known for now.
        if (!isMediaIntakeError(error, "JOURNAL_UNAVAILABLE")) throw error;
        throw new AppError(503, "JOURNAL_UNAVAILABLE", `The state of detection job ${jobId} cannot be read right now (the queue is out of reach); the job is not affected. Poll again later.`, {
          headers: { "retry-after": "5" },
        });
      });
      if (job.state === "unknown") throw jobNotFound(jobId);
      res.json({
        media,
        detection: {
          jobId,
          state: job.state,
          ...(job.state === "completed" ? { detections: job.result } : {}),
          ...(job.state === "failed" ? { error: { code: "DETECTION_FAILED", message: job.failedReason } } : {}),
        },
      });
    } catch (error) {
      next(error);
    }
  });

  return routes;
}
