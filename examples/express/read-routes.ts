// The reads: `GET /media/:mediaId` (a record, for who may see it) and `GET /detections/:jobId`
// (where a 202 says to poll: the job's state, its detections once done, and the media record).
import { Router } from "express";
import { isMediaIntakeError, normalizeMediaId } from "../../src/index.ts";
import { AppError, jobNotFound } from "./authorize.ts";
import type { AppContext } from "./context.ts";

export function readRoutes(context: AppContext): Router {
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
      // answers exactly as one that never was.
      if (!queue || !/^[0-9a-f]{16}(-rerun-[0-9a-f]{32})?$/.test(jobId)) throw jobNotFound(jobId);
      const media = await authorizedRecord(req, caller, jobId.slice(0, 16), () => jobNotFound(jobId));
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
