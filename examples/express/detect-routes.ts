// The detection routes: `POST /detect` (a multipart upload streamed into the intake),
// `POST /detect-multer` (the same through multer and mediaIntakeStorage), and
// `POST /detect/:mediaId` (a rerun of stored media, for who may see their record).
import { type RequestHandler, Router } from "express";
import multer from "multer";
import { type IntakenMedia, intakeMedia, MediaTooLargeError, normalizeMediaId, userIdFromToken } from "../../src/index.ts";
import { mediaIntakeStorage } from "../../src/multer/index.ts";
import { AppError } from "./authorize.ts";
import type { AppContext } from "./context.ts";
import type { DetectionRuns } from "./detection-runs.ts";
import { intakeFormFile } from "./form-file.ts";

/** What a multipart form may add around its file (boundaries, part headers, other fields). */
const FORM_SLACK_BYTES = 2 ** 20;

export function detectRoutes(context: AppContext, runs: DetectionRuns): Router {
  const { auth, maxUploadBytes, callerOf, authorizedRecord, inFlight } = context;
  const routes = Router();

  // A Content-Length far above the limit (more than the file plus 1 MiB of form around it) is
  // refused before a byte of the body is read: the same 413 as a file found too large on the way.
  const refuseOversized: RequestHandler = (req, _res, next) => {
    const declared = Number(req.headers["content-length"]);
    next(maxUploadBytes && Number.isFinite(declared) && declared > maxUploadBytes + FORM_SLACK_BYTES ? new MediaTooLargeError("", maxUploadBytes) : undefined);
  };
  routes.post(["/detect", "/detect-multer"], refuseOversized);

  routes.post("/detect", (req, res, next) =>
    inFlight.track(
      (async () => {
        // A client that goes away mid-upload, or the stop cutting it: the store aborts and removes its temp file.
        const signal = inFlight.signal(req, res);
        try {
          const token = req.headers.authorization;
          const caller = await callerOf(req);
          const media = await intakeFormFile<IntakenMedia>(req, (file, originalName) => intakeMedia(file, { ...context.intake, originalName, token, auth, signal }));
          await runs.answer(res, media, caller, token, signal);
        } catch (error) {
          next(error);
        }
      })(),
    ),
  );

  // Each file's intake is work in flight: a cut of the stop waits until it removed its temp file
  // (multer itself moves on as soon as the request is gone).
  const storage = mediaIntakeStorage({ ...context.intake, auth });
  const trackedStorage: typeof storage = {
    _handleFile: (req, file, callback) =>
      void inFlight.track(new Promise<void>((settled) => storage._handleFile(req, file, (error, info) => (settled(), callback(error, info))))),
    _removeFile: (req, file, callback) => storage._removeFile(req, file, callback),
  };
  const upload = multer({
    storage: trackedStorage,
    limits: { files: 1, ...(maxUploadBytes ? { fileSize: maxUploadBytes } : {}) },
    defParamCharset: "utf8",
  });
  routes.post(
    "/detect-multer",
    async (req, _res, next) => {
      try {
        await userIdFromToken(req.headers.authorization, auth);
        next();
      } catch (error) {
        next(error);
      }
    },
    // multer's own fileSize refusal answered as /detect and /files answer theirs: with the limit.
    (req, res, next) =>
      upload.single("file")(req, res, (error?: unknown) =>
        next((error as { code?: unknown } | undefined)?.code === "LIMIT_FILE_SIZE" && maxUploadBytes ? new MediaTooLargeError("", maxUploadBytes) : error),
      ),
    async (req, res, next) => {
      try {
        if (!req.file?.media) throw new AppError(400, "NO_FILE", 'Expected a file in the form field "file".');
        await inFlight.track(runs.answer(res, req.file.media, await callerOf(req), req.headers.authorization, inFlight.signal(req, res)));
      } catch (error) {
        next(error);
      }
    },
  );

  routes.post("/detect/:mediaId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      const record = await authorizedRecord(req, caller, normalizeMediaId(req.params.mediaId));
      await inFlight.track(runs.answer(res, record, caller, req.headers.authorization, new AbortController().signal, true));
    } catch (error) {
      next(error);
    }
  });

  return routes;
}
