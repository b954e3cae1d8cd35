// A detections service built on media-intake: every upload becomes a stored file, a Media
// record and a tracked detection run. In your own service import from "media-intake".
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { setTimeout } from "node:timers/promises";
import busboy from "busboy";
import express, { type NextFunction, type Request, type Response } from "express";
import multer from "multer";
import { pino, type Logger } from "pino";
import { pinoHttp } from "pino-http";
import {
  type AnnotationsClient,
  type Durability,
  type MediaJournal,
  httpErrorFor,
  type IntakenMedia,
  intakeMedia,
  isMediaIntakeError,
  type MediaRecord,
  MediaIntakeError,
  MediaStatus,
  MediaStatusUpdateError,
  MediaTooLargeError,
  normalizeMediaId,
  PROBE_MEDIA_ID,
  type StorageDirectories,
  trackMediaProcessing,
  type UserIdFromTokenOptions,
  userIdFromToken,
} from "../../src/index.ts";
import { mediaIntakeStorage } from "../../src/multer/index.ts";
import type { DetectionQueue } from "../../src/queue/index.ts";
import { createTusIntake, type TusIntake } from "../../src/tus/index.ts";
import type { Locker } from "@tus/server";
import { AppError, type AuthorizeMedia, type DetectionsCaller, isOwnerOrService, jobNotFound, mediaFor, mediaNotFound, readAuthorized } from "./authorize.ts";
import { CorruptMediaError, type Detection, detect } from "./detector.ts";
import { createReadiness, logMisconfiguration, type ReadinessOptions, storageFolders } from "./readiness.ts";

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
  /**
   * The service role: user IDs that may read and rerun every record (`SERVICE_USER_IDS`). Used by
   * the default `authorize` only. @default none
   */
  serviceUserIds?: readonly string[];
  /**
   * Who may read or rerun a record by its ID (`GET /media/:id`, `GET /detections/:jobId`,
   * `POST /detect/:id`), and who sees an upload's record whole (another uploader of the same
   * content sees it without the first uploader's user ID and name). Runs after the token is
   * checked, with the record as the annotations service has it (frozen); `false` answers 404,
   * the answer of an ID that does not exist; a throw answers 500. docs/authorization.md.
   * @default the record's own user, or one of `serviceUserIds` ({@link isOwnerOrService})
   */
  authorize?: AuthorizeMedia;
  maxUploadBytes?: number;
  /**
   * What an answered upload survives (`DURABILITY`), on every intake path: `"process"` a crash
   * of the process, `"power"` a power cut too (docs/guarantees.md, "Durability"). @default "process"
   */
  durability?: Durability;
  /** Simulated GPU time per detection, in ms (the stand-in detector is fast). @default 0 */
  detectorDelayMs?: number;
  /** The detector itself (a real one in a service of yours). @default the stand-in `detect` of detector.ts */
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
  /**
   * What `GET /readyz` checks besides the storage folders: the annotations service (named by
   * `annotationsUrl`, probed with `probeClient`, best without retries; else `client`), and
   * Redis when `redisPing` is given. @default the annotations service through `client`
   */
  readiness?: { annotationsUrl?: string; probeClient?: AnnotationsClient; redisPing?: ReadinessOptions["redisPing"]; timeoutMs?: number };
}

/** The JSON error body every route answers with, and the log line of a 5xx. */
function sendError(error: unknown, req: Request, res: Response): void {
  const answer =
    error instanceof AppError
      ? { status: error.status, code: error.code, message: error.message, headers: error.headers, mediaId: error.mediaId, log: false }
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
 * a client that is still sending; a longer one is cut. `done` runs once the body is read, or
 * cut, or the client is gone.
 */
function drainRequest(req: IncomingMessage, limit: number, done: () => void = () => {}): void {
  if (req.complete || req.destroyed) return done();
  let drained = 0;
  let called = false;
  const finish = () => {
    if (called) return;
    called = true;
    done();
  };
  req.unpipe();
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length;
    if (drained <= limit) return;
    req.pause();
    req.removeAllListeners("data");
    // The answer (if still to send) goes out first; the connection is closed after it.
    finish();
    req.socket.end(() => req.socket.destroy());
  });
  req.once("end", finish);
  req.once("close", finish);
  req.resume();
}

/**
 * An error's answer, with the rest of the request's body drained. On a kept-alive connection the
 * answer goes at once and the body is read after it (Node reads on for the next request); on one
 * that closes after the answer (`Connection: close`, HTTP/1.0), Node would close it while the
 * client still sends (EPIPE instead of the answer), so the body is read first, as multer does.
 */
function answerError(error: unknown, req: Request, res: Response, limit: number): void {
  if (res.shouldKeepAlive || req.complete || req.destroyed) {
    sendError(error, req, res);
    drainRequest(req, limit);
    return;
  }
  drainRequest(req, limit, () => {
    if (!req.socket.destroyed) sendError(error, req, res);
  });
}

/**
 * The file part of a multipart form, ending only when the whole form has: a body cut after the
 * file (no closing boundary) fails the upload instead of keeping a file nobody finished sending.
 * A `Readable` that hands on busboy's chunks as they are: the store writes a stream's chunks
 * without copying them (a stream never writes into a chunk it pushed). Destroying it, as the
 * intake does to let go of it early, destroys busboy's stream.
 */
function wholeFormFile(form: busboy.Busboy, file: Readable): Readable {
  const badForm = (error: Error) => (error instanceof AppError ? error : new AppError(400, "BAD_FORM", `Reading the form: ${error.message}`));
  let formClosed = false;
  let fileEnded = false;
  const whole = new Readable({
    read: () => void file.resume(),
    destroy(error, callback) {
      file.destroy();
      callback(error);
    },
  });
  file.pause();
  file.on("data", (chunk: Buffer) => {
    if (!whole.push(chunk)) file.pause();
  });
  file.once("end", () => {
    fileEnded = true;
    if (formClosed) whole.push(null);
  });
  // busboy fails the file stream when the body ends too soon: the client's fault, a 400.
  file.on("error", (error: Error) => whole.destroy(badForm(error)));
  form.once("close", () => {
    formClosed = true;
    if (fileEnded) whole.push(null);
  });
  form.once("error", (error: Error) => whole.destroy(badForm(error)));
  // Its errors reach the intake through the store's read; once the intake is over, nobody listens.
  whole.on("error", () => {});
  return whole;
}

export function createDetectionsApp(config: DetectionsAppConfig): express.Express {
  const { client, directories, auth, maxUploadBytes, detectorDelayMs = 0, drainLimitBytes = 64 * 2 ** 20, queue, durability = "process" } = config;
  // With the queue, intakes are journaled on Redis: another host settles one this host left.
  const journalOption = queue ? { journal: queue.journal } : {};
  const logger = config.logger ?? pino({ enabled: false });
  const serviceUserIds = [...(config.serviceUserIds ?? [])];
  const authorize: AuthorizeMedia = config.authorize ?? ((record, caller) => isOwnerOrService(record, caller, serviceUserIds));
  /** The caller of a request, from its token: a bad or missing one is a 401. */
  const callerOf = async (req: Request): Promise<DetectionsCaller> => {
    const header = req.headers.authorization;
    const userId = await userIdFromToken(header, auth);
    return { userId, token: String(header).replace(/^\s*Bearer\s+/i, "").trim() };
  };
  const folders = storageFolders(directories, config.tusUploadsDir);
  const readiness = createReadiness({
    annotations: { client: config.readiness?.probeClient ?? client, url: config.readiness?.annotationsUrl ?? "the annotations service" },
    folders,
    // With the queue: Redis answers PING, and so do the journal's and the queue's own connections.
    ...(queue || config.readiness?.redisPing
      ? {
          redisPing: async (signal: AbortSignal) => {
            await config.readiness?.redisPing?.(signal);
            await queue?.journal.list(PROBE_MEDIA_ID);
            await queue?.detections.state(PROBE_MEDIA_ID);
          },
        }
      : {}),
    ...(config.readiness?.timeoutMs ? { timeoutMs: config.readiness.timeoutMs } : {}),
    logger,
  });
  const app = express();
  app.disable("x-powered-by");
  app.locals.readiness = readiness;
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
    { client, directories, durability, logger, onStatusChange: (change) => runStarted(change) },
  );

  /**
   * Detection for a caller who may not see the record (a second uploader of another user's
   * content): their answer, with the record left alone. Their upload must not move another
   * user's record, nor end it in Error when they go away (docs/authorization.md).
   */
  const detectUntracked = async (media: MediaRecord | IntakenMedia, signal: AbortSignal) => {
    if (detectorDelayMs > 0) await setTimeout(detectorDelayMs, undefined, { signal });
    return (config.detector ?? detect)(media.path ?? "", media.id, signal);
  };

  const answerLocally = async (res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal, seesRecord: boolean) => {
    const detections = seesRecord ? await detection.with({ ...(token ? { token } : {}), signal })(media) : await detectUntracked(media, signal);
    const record = await client.media.get(media.id, token ? { token } : {});
    res.json({ media: mediaFor({ ...media, ...record }, seesRecord), detections });
  };

  /**
   * Queues a job that an upload's request could not queue (Redis out of reach after the media
   * were stored): tried every 5 s for an hour, in this process. A crash meanwhile leaves the
   * record New until its content is uploaded again (docs/guarantees.md, "What does not hold").
   */
  const enqueueLater = (queued: QueuedDetection, job: Parameters<DetectionQueue<Detection[]>["enqueue"]>[0], tries = 720) => {
    const timer = globalThis.setTimeout(() => {
      queued.detections.enqueue(job).then(
        () => logger.info({ id: job.id }, "detection queued after Redis came back"),
        (error: unknown) => {
          if (tries > 1 && isMediaIntakeError(error, "JOURNAL_UNAVAILABLE")) enqueueLater(queued, job, tries - 1);
          else logger.error({ id: job.id, err: error }, "detection could not be queued; the record stays New until its content is uploaded again");
        },
      );
    }, 5_000);
    timer.unref();
  };

  /**
   * On the queue: one job per media ID (duplicates on any replica join it). The request waits
   * `resultWaitMs` for the result, then answers 202 with where to poll; the job goes on.
   */
  const answerQueued = async (queued: QueuedDetection, res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal, rerun: boolean, seesRecord: boolean) => {
    const { id, path, mediaType, name, userId } = media;
    const job = { id, path, mediaType, name, userId };
    const { jobId } = await queued.detections.enqueue(job, { rerun }).catch((error: unknown) => {
      // Refused before anything changed (a rerun): the error says so. After an upload the media
      // are kept, with their record: the job is queued in the background once Redis takes it.
      if (rerun || !isMediaIntakeError(error, "JOURNAL_UNAVAILABLE")) throw error;
      enqueueLater(queued, job);
      throw new AppError(503, "DETECTION_NOT_QUEUED", `The media ${id} are stored; their detection could not be queued yet and will be queued once the queue is back (or send the upload again).`, {
        headers: { "retry-after": "5" },
        mediaId: id,
      });
    });
    const poll = `/detections/${jobId}`;
    let detections: Detection[];
    try {
      detections = await queued.detections.result(jobId, { timeoutMs: queued.resultWaitMs, signal });
    } catch (error) {
      if ((error as Error)?.name !== "TimeoutError") throw error;
      const { state } = await queued.detections.state(jobId);
      // Another user's record cannot be polled by its ID: its uploader sends the content again.
      if (!seesRecord) res.status(202).json({ media: mediaFor(media, false), detection: { state } });
      else res.status(202).location(poll).json({ media, detection: { jobId, state, poll } });
      return;
    }
    const record = await client.media.get(media.id, token ? { token } : {});
    res.json({ media: mediaFor({ ...media, ...record }, seesRecord), detections });
  };

  /** The answer to an upload, or a rerun (already authorized); another user's record is shown without its owner. */
  const answer = async (res: Response, media: MediaRecord | IntakenMedia, caller: DetectionsCaller, token: string | undefined, signal: AbortSignal, rerun = false) => {
    const seesRecord = rerun || (await authorize(Object.freeze({ ...media }), Object.freeze({ ...caller })));
    return queue ? answerQueued(queue, res, media, token, signal, rerun, seesRecord) : answerLocally(res, media, token, signal, seesRecord);
  };

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
    durability,
    client,
    ...(auth ? { auth } : {}),
    logger,
    ...journalOption,
    ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}),
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
      // The run outlives the request: its statuses land whatever the client does next.
      await startDetection(media, token);
      return { detection: { poll: `/media/${media.id}` } };
    },
  });
  app.locals.tus = tus;
  app.all(["/files", "/files/*splat"], (req, res) => void tus.handle(req, res));

  // Liveness: the process serves. Readiness: each dependency answers, or 503 with what is wrong.
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res, next) => {
    try {
      const report = await readiness.check();
      res.status(report.ready ? 200 : 503).json({ status: report.ready ? "ready" : "not ready", checks: report.checks });
    } catch (error) {
      next(error);
    }
  });

  app.post("/detect", async (req, res, next) => {
    const controller = new AbortController();
    // A client that goes away mid-upload: the store aborts and removes its temp file.
    res.on("close", () => {
      if (!res.writableFinished) controller.abort(new Error("the client disconnected"));
    });
    try {
      const token = req.headers.authorization;
      const caller = await callerOf(req);
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
            durability,
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
      await answer(res, media, caller, token, controller.signal);
    } catch (error) {
      next(error);
    }
  });

  const upload = multer({
    storage: mediaIntakeStorage({ client, directories, durability, auth, logger, ...journalOption, ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}) }),
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
    // multer's own fileSize refusal answered as /detect and /files answer theirs: with the limit.
    (req, res, next) =>
      upload.single("file")(req, res, (error?: unknown) =>
        next((error as { code?: unknown } | undefined)?.code === "LIMIT_FILE_SIZE" && maxUploadBytes ? new MediaTooLargeError("", maxUploadBytes) : error),
      ),
    async (req, res, next) => {
      try {
        if (!req.file?.media) throw new AppError(400, "NO_FILE", 'Expected a file in the form field "file".');
        const controller = new AbortController();
        await answer(res, req.file.media, await callerOf(req), req.headers.authorization, controller.signal);
      } catch (error) {
        next(error);
      }
    },
  );

  /** The record of a route's `:mediaId`, when the caller may see it; else the 404 of a missing one. */
  const authorizedRecord = (req: Request, caller: DetectionsCaller, id: string, notFound = () => mediaNotFound(id)) => {
    const token = req.headers.authorization;
    return readAuthorized(() => client.media.get(id, token ? { token } : {}), caller, authorize, notFound);
  };

  app.post("/detect/:mediaId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      const record = await authorizedRecord(req, caller, normalizeMediaId(req.params.mediaId));
      await answer(res, record, caller, req.headers.authorization, new AbortController().signal, true);
    } catch (error) {
      next(error);
    }
  });

  app.get("/media/:mediaId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      res.json(await authorizedRecord(req, caller, normalizeMediaId(req.params.mediaId)));
    } catch (error) {
      next(error);
    }
  });

  // Where a 202 says to poll: the job's state, its detections once done, and the media record.
  app.get("/detections/:jobId", async (req, res, next) => {
    try {
      const caller = await callerOf(req);
      const { jobId } = req.params;
      // The job of a media is its owner's: the record is read first, so that another user's job
      // answers exactly as one that never was.
      if (!queue || !/^[0-9a-f]{16}(-rerun-[0-9a-f]{32})?$/.test(jobId)) throw jobNotFound(jobId);
      const media = await authorizedRecord(req, caller, jobId.slice(0, 16), () => jobNotFound(jobId));
      const job = await queue.detections.state(jobId);
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

  app.use((req, res) => {
    res.status(404).json({ error: { code: "NOT_FOUND", message: `No route for ${req.method} ${req.path}.` } });
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    logMisconfiguration(error, req, folders);
    answerError(error, req, res, drainLimitBytes);
  });
  return app;
}
