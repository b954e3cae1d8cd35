// A detections service built on media-intake: every upload becomes a stored file, a Media
// record and a tracked detection run. In your own service import from "media-intake".
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { setTimeout } from "node:timers/promises";
import busboy from "busboy";
import express, { type NextFunction, type Request, type Response } from "express";
import multer from "multer";
import { pino, type Logger } from "pino";
import { pinoHttp } from "pino-http";
import {
  type AnnotationsClient,
  type MediaJournal,
  httpErrorFor,
  type IntakenMedia,
  intakeMedia,
  type MediaRecord,
  MediaIntakeError,
  MediaStatus,
  MediaStatusUpdateError,
  normalizeMediaId,
  type StorageDirectories,
  trackMediaProcessing,
  type UserIdFromTokenOptions,
  userIdFromToken,
} from "../../src/index.ts";
import { mediaIntakeStorage } from "../../src/multer/index.ts";
import type { DetectionQueue } from "../../src/queue/index.ts";
import { createTusIntake, type TusIntake } from "../../src/tus/index.ts";
import type { Locker } from "@tus/server";
import { CorruptMediaError, type Detection, detect } from "./detector.ts";

/** Detection on workers (`npm run example:worker`) through a BullMQ queue on Redis. */
export interface QueuedDetection {
  /** The queue: uploads enqueue their media, and wait for the result. */
  detections: DetectionQueue<Detection[]>;
  /** The Redis journal: intakes are journaled on it, so another host settles one this host left. */
  journal: MediaJournal;
  /** How long a request waits for the result before it answers 202 with where to poll. */
  resultWaitMs: number;
}

export interface DetectionsAppConfig {
  /** The annotations client: each request's own token is passed per call; its own token (the service's) serves background work. */
  client: AnnotationsClient;
  directories: StorageDirectories;
  /** How tokens are checked: with `verify.secret` (HS256) or decoded only. */
  auth: UserIdFromTokenOptions;
  maxUploadBytes?: number;
  /** Simulated GPU time per detection, in ms (the stand-in detector is fast). @default 0 */
  detectorDelayMs?: number;
  /** The detector itself (`npm run bench:e2e` passes a no-op). @default the stand-in `detect` of detector.ts */
  detector?: (path: string, id: string, signal: AbortSignal) => Promise<Detection[]>;
  /** Request logs and errors. @default a silent logger */
  logger?: Logger;
  /**
   * After an early refusal (415, 413, 401) the rest of the upload is read and dropped, up to
   * this many bytes, so that the client gets the answer on a healthy connection; past it the
   * connection is closed. @default 64 MiB
   */
  drainLimitBytes?: number;
  /** With it, detection runs on workers through the queue; without it, in this process. */
  queue?: QueuedDetection;
  /** The tus locker of `/files`: `createRedisTusLocker` when several processes serve it. @default one in memory */
  tusLocker?: Locker;
  /** Where partial tus uploads live (on the storage volume). @default `<videosDir>/.media-intake-uploads` */
  tusUploadsDir?: string;
  /** A partial tus upload untouched this long after its creation expires. @default one day */
  tusExpireAfterMs?: number;
}

/** An error the app answers with its own status. */
class AppError extends MediaIntakeError {
  readonly status: number;
  readonly expose = true;
  constructor(status: number, code: string, message: string) {
    super(message, { code });
    this.name = "AppError";
    this.status = status;
  }
}

/** The JSON error body every route answers with, and the log line of a 5xx. */
function sendError(error: unknown, req: Request, res: Response): void {
  const answer =
    error instanceof AppError
      ? { status: error.status, code: error.code, message: error.message, headers: {}, log: false }
      : error instanceof CorruptMediaError || (error instanceof MediaIntakeError && error.code === "DETECTION_FAILED")
        ? { status: 422, code: "DETECTION_FAILED", message: error.message, headers: {}, log: false }
        : httpErrorFor(error);
  if (answer.log) req.log.error({ err: error, code: answer.code }, "request failed");
  if (res.headersSent) return;
  res
    .status(answer.status)
    .set(answer.headers)
    .json({ error: { code: answer.code, message: answer.message, ...("mediaId" in answer && answer.mediaId ? { mediaId: answer.mediaId } : {}) } });
}

/**
 * The rest of a refused upload is read and dropped (up to `limit` bytes), so the answer reaches
 * a client that is still sending; a longer one is cut.
 */
function drainRequest(req: IncomingMessage, limit: number): void {
  if (req.complete || req.destroyed) return;
  let drained = 0;
  req.unpipe();
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > limit) req.socket.destroy();
  });
  req.resume();
}

/**
 * The file part of a multipart form, ending only when the whole form has: a body cut after the
 * file (no closing boundary) fails the upload instead of keeping a file nobody finished sending.
 * Read straight from busboy's stream (no stream in between: each hop costs CPU per chunk);
 * `destroy` is how the intake lets go of it early.
 */
function wholeFormFile(form: busboy.Busboy, file: Readable): AsyncIterable<Uint8Array> & { destroy(): void } {
  const badForm = (error: Error) => (error instanceof AppError ? error : new AppError(400, "BAD_FORM", `Reading the form: ${error.message}`));
  let formClosed = false;
  let formError: AppError | undefined;
  let wake: (() => void) | undefined;
  form.once("close", () => {
    formClosed = true;
    wake?.();
  });
  form.once("error", (error: Error) => {
    formError = badForm(error);
    file.destroy(formError);
    wake?.();
  });
  // Its errors reach the intake through the loop below; once the intake is over, nobody listens.
  file.on("error", () => {});
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      // busboy fails the file stream when the body ends too soon: the client's fault, a 400.
      for await (const chunk of file) yield chunk as Uint8Array;
    } catch (error) {
      throw badForm(error as Error);
    }
    if (!formClosed && !formError) await new Promise<void>((resolve) => (wake = resolve));
    if (formError) throw formError;
  }
  return Object.assign(chunks(), { destroy: () => file.destroy() });
}

export function createDetectionsApp(config: DetectionsAppConfig): express.Express {
  const { client, directories, auth, maxUploadBytes, detectorDelayMs = 0, drainLimitBytes = 64 * 2 ** 20, queue } = config;
  // With the queue, intakes are journaled on Redis: another host settles one this host left.
  const journalOption = queue ? { journal: queue.journal } : {};
  const logger = config.logger ?? pino({ enabled: false });
  const app = express();
  app.disable("x-powered-by");
  // One line per request; never headers (the bearer token), never bodies.
  app.use(
    pinoHttp({
      logger,
      serializers: { req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }) },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? "error" : "info"),
    }),
  );

  /**
   * Detection under trackMediaProcessing: New -> AIProcessing -> AIProcessed, or Error. One
   * tracked function for the app, so duplicate uploads in flight share one run; each request
   * brings its token and its signal (a client that goes away stops waiting; the run stops when
   * nobody waits any more, its Error written in the background).
   */
  const detection = trackMediaProcessing(
    async (media, context) => {
      if (detectorDelayMs > 0) await setTimeout(detectorDelayMs, undefined, { signal: context.signal });
      return (config.detector ?? detect)(media.path ?? "", media.id, context.signal);
    },
    { client, directories, logger, onStatusChange: (change) => runStarted(change) },
  );

  const answerLocally = async (res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal) => {
    const detections = await detection.with({ ...(token ? { token } : {}), signal })(media);
    const record = await client.media.get(media.id, token ? { token } : {});
    res.json({ media: { ...media, ...record }, detections });
  };

  /**
   * On the queue: one job per media ID (duplicates on any replica join it). The request waits
   * `resultWaitMs` for the result, then answers 202 with where to poll; the job goes on.
   */
  const answerQueued = async (queued: QueuedDetection, res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal, rerun: boolean) => {
    const { id, path, mediaType, name, userId } = media;
    const { jobId } = await queued.detections.enqueue({ id, path, mediaType, name, userId }, { rerun });
    const poll = `/detections/${jobId}`;
    let detections: Detection[];
    try {
      detections = await queued.detections.result(jobId, { timeoutMs: queued.resultWaitMs, signal });
    } catch (error) {
      if ((error as Error)?.name !== "TimeoutError") throw error;
      const { state } = await queued.detections.state(jobId);
      res.status(202).location(poll).json({ media, detection: { jobId, state, poll } });
      return;
    }
    const record = await client.media.get(media.id, token ? { token } : {});
    res.json({ media: { ...media, ...record }, detections });
  };

  const answer = (res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal, rerun = false) =>
    queue ? answerQueued(queue, res, media, token, signal, rerun) : answerLocally(res, media, token, signal);

  /** Finished tus uploads waiting for their run to start (its AIProcessing recorded), by media ID. */
  const runStarts = new Map<string, Set<() => void>>();
  function runStarted(change: { id: string; to: MediaStatus; error?: unknown }): void {
    if (change.to !== MediaStatus.AIProcessing || change.error !== undefined) return;
    for (const started of runStarts.get(change.id) ?? []) started();
  }
  /**
   * Starts detection of a finished tus upload in this process and resolves once it has started:
   * from its AIProcessing on, the run's journal settles a crash. Whatever stops it sooner (the
   * AIProcessing not recorded, a crash) fails the finish, and the next one (the client's HEAD,
   * the sweep) starts it again. The run itself goes on after the answer.
   */
  async function startDetection(media: IntakenMedia, token: string | undefined): Promise<void> {
    const waiting = runStarts.get(media.id) ?? new Set<() => void>();
    runStarts.set(media.id, waiting);
    let started = () => {};
    const onStart = new Promise<void>((resolve) => waiting.add((started = resolve)));
    const run = detection.with(token ? { token } : {})(media);
    run.catch((error: unknown) => logger.warn({ id: media.id, err: error }, "detection after a tus upload failed"));
    try {
      // A run joined in flight records no new AIProcessing: its end (a status written) counts.
      const ended = run.then(
        () => {},
        (error: unknown) => {
          if (error instanceof MediaStatusUpdateError && error.to === MediaStatus.AIProcessing) throw error;
        },
      );
      await Promise.race([onStart, ended]);
    } finally {
      waiting.delete(started);
      if (waiting.size === 0 && runStarts.get(media.id) === waiting) runStarts.delete(media.id);
    }
  }

  /**
   * Resumable uploads (tus 1.0) at `/files`, with the same auth and limits as `/detect`. The final
   * response carries the media once detection has started (its AIProcessing recorded in this
   * process, or its job enqueued), and the client reads its end at `GET /media/:mediaId` (or
   * polls the job). A HEAD or the sweep that finishes an upload starts its detection too.
   */
  const tus: TusIntake = createTusIntake({
    path: "/files",
    directories,
    client,
    ...(auth ? { auth } : {}),
    logger,
    ...journalOption,
    ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}),
    ...(config.tusLocker ? { locker: config.tusLocker } : {}),
    ...(config.tusUploadsDir ? { uploadsDir: config.tusUploadsDir } : {}),
    ...(config.tusExpireAfterMs ? { expireAfterMs: config.tusExpireAfterMs } : {}),
    onMediaIntaken: async (media, { token }) => {
      if (queue) {
        const { id, path, mediaType, name, userId } = media;
        const { jobId } = await queue.detections.enqueue({ id, path, mediaType, name, userId });
        return { detection: { jobId, poll: `/detections/${jobId}` } };
      }
      // The run outlives the request: its statuses land whatever the client does next.
      await startDetection(media, token);
      return { detection: { poll: `/media/${media.id}` } };
    },
  });
  app.locals.tus = tus;
  app.all(["/files", "/files/*splat"], (req, res) => void tus.handle(req, res));

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
          // UTF-8 file names (browsers and curl send them raw; busboy's default is latin1).
          form = busboy({ headers: req.headers, limits: { files: 1 }, defParamCharset: "utf8" });
        } catch (error) {
          reject(new AppError(400, "BAD_FORM", `Expected multipart/form-data: ${(error as Error).message}`));
          return;
        }
        let intake: Promise<IntakenMedia> | undefined;
        form.on("file", (field, stream, info) => {
          if (field !== "file" || intake) {
            stream.resume();
            return;
          }
          intake = intakeMedia(wholeFormFile(form, stream), {
            originalName: info.filename ?? "",
            token,
            auth,
            client,
            directories,
            signal: controller.signal,
            logger,
            ...journalOption,
            ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}),
          });
          // Settles the request as soon as the intake does: a refused upload (too large, a lying
          // type) answers at once instead of reading the rest of the body first.
          intake.then(resolve, reject);
        });
        form.on("error", (error: Error) => {
          if (!intake) reject(new AppError(400, "BAD_FORM", `Reading the form: ${error.message}`));
        });
        form.on("close", () => {
          if (!intake) reject(new AppError(400, "NO_FILE", 'Expected a file in the form field "file".'));
        });
        req.pipe(form);
      });
      await answer(res, media, token, controller.signal);
    } catch (error) {
      next(error);
    }
  });

  const upload = multer({
    storage: mediaIntakeStorage({ client, directories, auth, logger, ...journalOption, ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}) }),
    limits: { files: 1, ...(maxUploadBytes ? { fileSize: maxUploadBytes } : {}) },
    defParamCharset: "utf8",
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
        if (!req.file?.media) throw new AppError(400, "NO_FILE", 'Expected a file in the form field "file".');
        const controller = new AbortController();
        await answer(res, req.file.media, req.headers.authorization, controller.signal);
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
      await answer(res, record, token, new AbortController().signal, true);
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

  // Where a 202 says to poll: the job's state, its detections once done, and the media record.
  app.get("/detections/:jobId", async (req, res, next) => {
    try {
      const token = req.headers.authorization;
      await userIdFromToken(token, auth);
      const { jobId } = req.params;
      if (!queue || !/^[0-9a-f]{16}(-rerun-[0-9a-z]+)?$/.test(jobId)) throw new AppError(404, "NOT_FOUND", `No detection job ${jobId}.`);
      const job = await queue.detections.state(jobId);
      if (job.state === "unknown") throw new AppError(404, "NOT_FOUND", `No detection job ${jobId} (never queued, or its result expired).`);
      const media = await client.media.get(jobId.slice(0, 16), token ? { token } : {});
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

  app.use((req, res) => {
    res.status(404).json({ error: { code: "NOT_FOUND", message: `No route for ${req.method} ${req.path}.` } });
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    sendError(error, req, res);
    drainRequest(req, drainLimitBytes);
  });
  return app;
}
