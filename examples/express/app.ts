// A detections service built on media-intake: every upload becomes a stored file, a Media
// record and a tracked detection run. In your own service import from "media-intake".
import { setTimeout } from "node:timers/promises";
import busboy from "busboy";
import express, { type NextFunction, type Request, type Response } from "express";
import multer from "multer";
import {
  type AnnotationsClient,
  type IntakenMedia,
  intakeMedia,
  isMediaIntakeError,
  type MediaRecord,
  MediaRecordPendingError,
  normalizeMediaId,
  type StorageDirectories,
  trackMediaProcessing,
  type UserIdFromTokenOptions,
  userIdFromToken,
} from "../../src/index.ts";
import { mediaIntakeStorage } from "../../src/multer/index.ts";
import { CorruptMediaError, detect } from "./detector.ts";

export interface DetectionsAppConfig {
  /** The annotations client: each request's own token is passed per call; its own token (the service's) serves background work. */
  client: AnnotationsClient;
  directories: StorageDirectories;
  /** How tokens are checked: with `verify.secret` (HS256) or decoded only. */
  auth: UserIdFromTokenOptions;
  maxUploadBytes?: number;
  /** Simulated GPU time per detection, in ms (the stand-in detector is fast). @default 0 */
  detectorDelayMs?: number;
}

/** An error the app answers with its own status. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Maps errors to HTTP answers, here at the edge and nowhere inside the library. */
export function httpStatusFor(error: unknown): { status: number; code: string } {
  if (error instanceof HttpError) return { status: error.status, code: error.code };
  if (error instanceof CorruptMediaError) return { status: 422, code: error.code };
  if (error instanceof multer.MulterError) return { status: error.code === "LIMIT_FILE_SIZE" ? 413 : 400, code: error.code };
  if (!isMediaIntakeError(error)) return { status: 500, code: "INTERNAL" };
  const byCode: Record<string, number> = {
    AUTH_TOKEN_INVALID: 401,
    INVALID_MEDIA_ID: 400,
    UNSUPPORTED_MEDIA_TYPE: 415,
    MEDIA_CONTENT_MISMATCH: 415,
    MEDIA_TOO_LARGE: 413,
    MEDIA_ID_COLLISION: 409,
    MEDIA_NOT_FOUND: 404,
    MEDIA_RECORD_PENDING: 503,
    ANNOTATIONS_AUTH_FAILED: 401,
    ANNOTATIONS_UNAVAILABLE: 503,
    ANNOTATIONS_HTTP_ERROR: 502,
    ANNOTATIONS_BAD_RESPONSE: 502,
    MEDIA_STATUS_UPDATE_FAILED: 502,
  };
  const cause = (error as Error).cause;
  if (error.code === "MEDIA_STATUS_UPDATE_FAILED" && isMediaIntakeError(cause, "ANNOTATIONS_UNAVAILABLE")) return { status: 503, code: error.code };
  return { status: byCode[error.code] ?? 500, code: error.code };
}

export function createDetectionsApp(config: DetectionsAppConfig): express.Express {
  const { client, directories, auth, maxUploadBytes, detectorDelayMs = 0 } = config;
  const app = express();

  /**
   * Detection under trackMediaProcessing: New -> AIProcessing -> AIProcessed, or Error. One
   * tracked function for the app, so duplicate uploads in flight share one run; each request
   * brings its token and its signal (a client that goes away stops waiting; the run stops when
   * nobody waits any more, its Error written in the background).
   */
  const detection = trackMediaProcessing(
    async (media, context) => {
      if (detectorDelayMs > 0) await setTimeout(detectorDelayMs, undefined, { signal: context.signal });
      return detect(media.path ?? "", media.id, context.signal);
    },
    { client, directories },
  );

  const answer = async (res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal) => {
    const detections = await detection.with({ ...(token ? { token } : {}), signal })(media);
    const record = await client.media.get(media.id, token ? { token } : {});
    res.json({ media: { ...media, ...record }, detections });
  };

  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });

  app.post("/detect", async (req, res, next) => {
    const controller = new AbortController();
    // A client that goes away mid-upload: the store aborts and removes its temp file.
    res.on("close", () => {
      if (!res.writableFinished) controller.abort(new Error("the client disconnected"));
    });
    try {
      const token = req.headers.authorization;
      await userIdFromToken(token, auth);
      const media = await new Promise<IntakenMedia>((resolve, reject) => {
        let form: busboy.Busboy;
        try {
          form = busboy({ headers: req.headers, limits: { files: 1 } });
        } catch (error) {
          reject(new HttpError(400, "BAD_FORM", `Expected multipart/form-data: ${(error as Error).message}`));
          return;
        }
        let intake: Promise<IntakenMedia> | undefined;
        form.on("file", (field, stream, info) => {
          if (field !== "file" || intake) {
            stream.resume();
            return;
          }
          intake = intakeMedia(stream, {
            originalName: info.filename ?? "",
            token,
            auth,
            client,
            directories,
            signal: controller.signal,
            ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}),
          });
          // Settles the request as soon as the intake does: a refused upload (too large, a lying
          // type) answers at once instead of reading the rest of the body first.
          intake.then(resolve, (error: unknown) => {
            stream.resume();
            reject(error);
          });
        });
        form.on("error", (error: Error) => reject(new HttpError(400, "BAD_FORM", `Reading the form: ${error.message}`)));
        form.on("close", () => {
          if (!intake) reject(new HttpError(400, "NO_FILE", 'Expected a file in the form field "file".'));
        });
        req.pipe(form);
      });
      await answer(res, media, token, controller.signal);
    } catch (error) {
      next(error);
    }
  });

  const upload = multer({
    storage: mediaIntakeStorage({ client, directories, auth, ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}) }) as multer.StorageEngine,
    limits: { files: 1, ...(maxUploadBytes ? { fileSize: maxUploadBytes } : {}) },
  });
  app.post(
    "/detect-multer",
    async (req, _res, next) => {
      try {
        await userIdFromToken(req.headers.authorization, auth);
        next();
      } catch (error) {
        next(error);
      }
    },
    upload.single("file"),
    async (req, res, next) => {
      try {
        const file = req.file as (Express.Multer.File & { media?: IntakenMedia }) | undefined;
        if (!file?.media) throw new HttpError(400, "NO_FILE", 'Expected a file in the form field "file".');
        const controller = new AbortController();
        await answer(res, file.media, req.headers.authorization, controller.signal);
      } catch (error) {
        next(error);
      }
    },
  );

  app.post("/detect/:mediaId", async (req, res, next) => {
    try {
      const token = req.headers.authorization;
      await userIdFromToken(token, auth);
      const record = await client.media.get(normalizeMediaId(req.params.mediaId), token ? { token } : {});
      await answer(res, record, token, new AbortController().signal);
    } catch (error) {
      next(error);
    }
  });

  app.get("/media/:mediaId", async (req, res, next) => {
    try {
      const token = req.headers.authorization;
      await userIdFromToken(token, auth);
      res.json(await client.media.get(normalizeMediaId(req.params.mediaId), token ? { token } : {}));
    } catch (error) {
      next(error);
    }
  });

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, code } = httpStatusFor(error);
    if (res.headersSent) return;
    // Kept, not lost: the record is settled in the background; the client may retry or poll.
    if (error instanceof MediaRecordPendingError) {
      res.status(status).set("retry-after", "5").json({ error: { code, message: error.message, mediaId: error.id } });
      return;
    }
    res.status(status).json({ error: { code, message: (error as Error)?.message ?? String(error) } });
  });
  return app;
}
