// Detection as BullMQ jobs: the web side enqueues (the media ID is the job ID, so duplicates on
// any replica are one job), workers anywhere run the detector under the status lifecycle, and
// BullMQ's locks and stalled-job checker re-run the job of a worker that died.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectionOptions, Telemetry } from "bullmq";
import { type AnnotationsClient, MediaStatus } from "../annotations/index.ts";
import { isMediaIntakeError, JournalUnavailableError, MediaIntakeError } from "../errors/index.ts";
import type { JournalEntry, MediaJournal } from "../journal/index.ts";
import { type LifecycleLogger, settleInBackground, type TrackedMedia, trackMediaProcessing } from "../lifecycle/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import { callRedisPromptly, checkOptionsOf, checkRedisConnection, DEFAULT_REDIS_TIMEOUT_MS, MINIMUM, type OptionChecks, peerModule, showValue } from "../utils/index.ts";
import { bullmq } from "./bullmq.ts";

/** What a detection job carries: the media's record (its ID, path, type, user). */
export type DetectionJobData = TrackedMedia;

/**
 * A detection job ended in failure: the detector failed its last try, or BullMQ gave the job up
 * (it stalled more often than `maxStalledCount`). `failedReason` is the detector's message.
 */
export class DetectionFailedError extends MediaIntakeError {
  /** The job that failed. */
  readonly jobId: string;
  /** Why, as BullMQ recorded it: the detector's error message, or the stall. */
  readonly failedReason: string;
  constructor(jobId: string, failedReason: string) {
    super(`Detection job ${jobId} failed: ${failedReason || "no reason recorded"}.`, { code: "DETECTION_FAILED" });
    this.name = "DetectionFailedError";
    this.jobId = jobId;
    this.failedReason = failedReason;
  }
}

/** Options of {@link createDetectionQueue}. */
export interface DetectionQueueOptions {
  /** Redis, as BullMQ takes it: ioredis options or an ioredis client. */
  connection: ConnectionOptions;
  /** The queue's name. @default "media-detection" */
  name?: string;
  /** Tries per job before the record goes to Error. @default 3 */
  attempts?: number;
  /** Delay before the second try, doubled for each next one. @default 1_000 */
  backoffMs?: number;
  /** How long a finished job's result stays retrievable. @default 86_400 (one day) */
  keepResultsSeconds?: number;
  /**
   * How long `enqueue` waits for Redis: past it, or at once while the connection is lost, it
   * rejects with a `JournalUnavailableError` (503 with `Retry-After` at the edge) rather than
   * wait in ioredis's offline queue. @default 5_000
   */
  timeoutMs?: number;
  /**
   * BullMQ's own telemetry, handed to its `Queue` as is: `new BullMQOtel(...)` of the
   * `bullmq-otel` package traces each add (docs/observability.md). @default none
   */
  telemetry?: Telemetry;
}

/** What {@link DetectionQueue.enqueue} did. */
export interface EnqueuedDetection {
  /** The job's ID: the media ID, or for a re-run `<media ID>-rerun-<32 random hex digits>` (unguessable). */
  readonly jobId: string;
  /** `false` when a job for this media was already queued, running or finished: this joined it. */
  readonly created: boolean;
}

/** The web side of the queue. */
export interface DetectionQueue<Result = unknown> {
  /**
   * Queues detection of the media. The media ID is the job ID: a duplicate (from any replica)
   * joins the job already there, and a finished one's result is kept (`keepResultsSeconds`).
   * `rerun: true` queues a new run of stored media; a failed job is tried again. While Redis
   * cannot be reached, rejects promptly with a `JournalUnavailableError` (see `timeoutMs`).
   */
  enqueue(media: DetectionJobData, options?: { rerun?: boolean }): Promise<EnqueuedDetection>;
  /**
   * Waits for the job's result: resolves to it, rejects with a {@link DetectionFailedError} after
   * the last try, rejects with a `TimeoutError` after `timeoutMs` (the job goes on) or with
   * `signal.reason` on abort. Redis out of reach is waited through (a restart is a blip); still
   * out of reach at the deadline, it rejects with a `JournalUnavailableError`.
   */
  result(jobId: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result>;
  /**
   * Where the job is now, for clients that poll: its state, and its result or failure once done.
   * While Redis cannot be reached, rejects promptly with a `JournalUnavailableError`.
   */
  state(jobId: string): Promise<{ state: string; result?: Result; failedReason?: string }>;
  /** Closes the queue's connections. */
  close(): Promise<void>;
}

const defaults = { name: "media-detection", attempts: 3, backoffMs: 1_000, keepResultsSeconds: 86_400, timeoutMs: DEFAULT_REDIS_TIMEOUT_MS } as const;

const ms = (min: number) => ({ min, unit: "ms" }) as const;

/** BullMQ's `telemetry` option: undefined, or what its `Telemetry` interface asks for (a tracer and a context manager). */
function checkTelemetry(check: OptionChecks, telemetry: unknown): { telemetry?: Telemetry } {
  if (telemetry === undefined) return {};
  const { tracer, contextManager } = (telemetry ?? {}) as Partial<Telemetry>;
  if (typeof tracer?.startSpan !== "function" || typeof contextManager?.with !== "function" || typeof contextManager.active !== "function") {
    check.fail("telemetry", "BullMQ telemetry (a tracer and a context manager, such as new BullMQOtel() of bullmq-otel)", telemetry);
  }
  return { telemetry: telemetry as Telemetry };
}

/**
 * The web side: enqueue detection for a media record, and wait for (or poll) its result.
 *
 * @example
 * const detections = createDetectionQueue({ connection: { url: process.env.REDIS_URL } });
 * const { jobId } = await detections.enqueue(media);
 * const result = await detections.result(jobId, { timeoutMs: 30_000, signal });
 */
export function createDetectionQueue<Result = unknown>(options: DetectionQueueOptions): DetectionQueue<Result> {
  const check = checkOptionsOf("createDetectionQueue");
  check.known(options, ["connection", "name", "attempts", "backoffMs", "keepResultsSeconds", "timeoutMs", "telemetry"]);
  checkRedisConnection(check, options.connection);
  const name = options.name ?? defaults.name;
  const attempts = check.integer("attempts", options.attempts ?? defaults.attempts, { min: 1 });
  const backoffMs = check.integer("backoffMs", options.backoffMs ?? defaults.backoffMs, ms(MINIMUM.delayMs));
  const keep = check.integer("keepResultsSeconds", options.keepResultsSeconds ?? defaults.keepResultsSeconds, { min: 1, unit: "s" });
  const timeoutMs = check.integer("timeoutMs", options.timeoutMs ?? defaults.timeoutMs, ms(MINIMUM.timeoutMs));
  const telemetry = checkTelemetry(check, options.telemetry);
  const { Job, Queue } = peerModule(bullmq, "createDetectionQueue");
  const queue = new Queue<DetectionJobData, Result>(name, { connection: options.connection, ...telemetry });
  // A queue with no listener would throw its connection errors; they reach callers through the calls that fail.
  queue.on("error", () => {});

  /** Adds the job, or joins (or retries) the one there. */
  async function enqueueJob(media: DetectionJobData, id: string, jobId: string, rerun: boolean): Promise<EnqueuedDetection> {
    const existing = rerun ? undefined : await queue.getJob(jobId);
    if (existing) {
      // A failed job is tried again; a queued, running or finished one is joined.
      if (await existing.isFailed()) {
        await existing.retry();
        return Object.freeze({ jobId, created: true });
      }
      return Object.freeze({ jobId, created: false });
    }
    // The name carries a mark of this call: BullMQ answers an add of an ID it has with the job
    // it has, so the mark tells whether this call made the job or joined another replica's.
    const mark = `detect ${randomBytes(6).toString("hex")}`;
    const job = await queue.add(mark, { ...media, id }, {
      jobId,
      attempts,
      backoff: { type: "exponential", delay: backoffMs },
      removeOnComplete: { age: keep },
      removeOnFail: { age: keep },
    });
    // The job as Redis holds it: ours when it bears this call's mark.
    const stored = job.name === mark ? await queue.getJob(jobId) : job;
    return Object.freeze({ jobId, created: stored?.name === mark });
  }

  /** A job's state, and the job once it is finished; promptly `JournalUnavailableError` while Redis cannot be reached. */
  function readJob(doing: string, jobId: string) {
    return callRedisPromptly(
      queue.getBackend().client,
      timeoutMs,
      async () => {
        const state = await queue.getJobState(jobId);
        const finished = state === "completed" || state === "failed";
        return { state, job: finished ? await Job.fromId<DetectionJobData, Result>(queue, jobId) : undefined };
      },
      (cause) => new JournalUnavailableError(doing, `redis queue ${name}`, cause),
    );
  }

  return {
    enqueue(media, { rerun = false } = {}) {
      const id = normalizeMediaId(media.id);
      // A rerun's ID is unguessable: the media ID is not (anyone holding the bytes computes it).
      const jobId = rerun ? `${id}-rerun-${randomBytes(16).toString("hex")}` : id;
      const unavailable = (cause: unknown) => new JournalUnavailableError(`Queueing detection job ${jobId}`, `redis queue ${name}`, cause);
      return callRedisPromptly(queue.getBackend().client, timeoutMs, () => enqueueJob(media, id, jobId, rerun), unavailable);
    },
    async result(jobId, { timeoutMs, signal } = {}) {
      // Polls the job's state (50 ms, growing to 1 s): no blocking connection to hold or close.
      const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
      for (let pause = 50; ; pause = Math.min(1_000, pause * 1.5)) {
        signal?.throwIfAborted();
        // The state first: a finished job's result is in place by the time its state says so.
        // Redis out of reach is waited through like a job still running (a restart is a blip),
        // and is the answer if it lasts to the deadline.
        let unavailable: unknown;
        const read = await readJob(`Waiting for detection job ${jobId}`, jobId).catch((error: unknown) => {
          if (!isMediaIntakeError(error, "JOURNAL_UNAVAILABLE")) throw error;
          unavailable = error;
          return undefined;
        });
        if (read?.state === "unknown") throw new Error(`Waiting for detection job ${jobId}: no such job (never queued, or its result expired).`);
        if (read?.state === "completed" || read?.state === "failed") {
          if (!read.job) throw new Error(`Waiting for detection job ${jobId}: its result expired.`);
          if (read.state === "completed") return read.job.returnvalue;
          throw new DetectionFailedError(jobId, read.job.failedReason);
        }
        const left = deadline - Date.now();
        if (left <= 0 && unavailable !== undefined) throw unavailable;
        if (left <= 0) throw new DOMException(`Waiting for detection job ${jobId}: no result within ${timeoutMs} ms (the job goes on).`, "TimeoutError");
        await sleep(Math.min(pause, left), undefined, signal ? { signal } : {});
      }
    },
    async state(jobId) {
      const { state, job } = await readJob(`Reading detection job ${jobId}`, jobId);
      if (state !== "completed" && state !== "failed") return { state };
      if (!job) return { state: "unknown" };
      return state === "completed" ? { state, result: job.returnvalue } : { state, failedReason: job.failedReason };
    },
    async close() {
      await queue.close();
    },
  };
}

/** Options of {@link startDetectionWorker}. */
export interface DetectionWorkerOptions {
  /** Redis, as BullMQ takes it. */
  connection: ConnectionOptions;
  /** The annotations client; its own token (the service's) records the statuses. */
  client: AnnotationsClient;
  /** The journal that keeps each run's outcome until it lands: the Redis one, shared by every host. */
  journal: MediaJournal;
  /** The queue's name. @default "media-detection" */
  name?: string;
  /** Jobs run at once in this worker. @default 1 */
  concurrency?: number;
  /**
   * How long a job's lock holds without renewal: a worker that died is found out after it, and
   * its job runs again elsewhere. @default 30_000
   */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for. @default 30_000 */
  stalledIntervalMs?: number;
  /**
   * How often a job may lose its worker (a crash) and run again; one more and BullMQ fails it,
   * and its record goes to Error. @default 1
   */
  maxStalledCount?: number;
  /** Gets a line per status change and per failure. */
  logger?: LifecycleLogger;
  /**
   * BullMQ's own telemetry, handed to its `Worker` as is: `new BullMQOtel(...)` of the
   * `bullmq-otel` package traces each job, and the run's `media_intake.track` span is a child of
   * the job's (docs/observability.md). @default none
   */
  telemetry?: Telemetry;
}

/** A running detection worker. */
export interface DetectionWorker {
  /** Stops taking jobs and lets the running ones finish (SIGTERM); `force` gives them back to the queue. */
  close(force?: boolean): Promise<void>;
}

/**
 * Runs your detector on the queue's jobs, with the status lifecycle of `trackMediaProcessing`:
 * AIProcessing when a try starts, AIProcessed with its result, Error only after the last try
 * (throw BullMQ's `UnrecoverableError` for a failure no try will fix, such as a corrupt file);
 * the final status is journaled and written until it lands. A worker that dies mid-job (SIGKILL,
 * a lost host) loses the job's lock: BullMQ runs the job again on another worker, and the record
 * goes back through AIProcessing to its end.
 *
 * @example
 * const worker = startDetectionWorker(async (media, { signal }) => runDetector(media.path!, signal), { connection, client, journal });
 * process.once("SIGTERM", () => void worker.close());
 */
export function startDetectionWorker<Result>(
  detect: (media: TrackedMedia, context: { signal: AbortSignal; attempt: number }) => Result | Promise<Result>,
  options: DetectionWorkerOptions,
): DetectionWorker {
  const check = checkOptionsOf("startDetectionWorker");
  check.known(options, ["connection", "client", "journal", "name", "concurrency", "lockDurationMs", "stalledIntervalMs", "maxStalledCount", "logger", "telemetry"]);
  if (typeof detect !== "function") throw new TypeError(`startDetectionWorker: expected the detector to be a function, got ${showValue(detect)}.`);
  checkRedisConnection(check, options.connection);
  if (!options.client?.media) check.fail("client", "an annotations client", options.client);
  if (!options.journal) check.fail("journal", "the Redis journal (createRedisJournal) that keeps each run's outcome", options.journal);
  const { client, logger } = options;
  const name = options.name ?? defaults.name;
  const maxStalledCount = check.integer("maxStalledCount", options.maxStalledCount ?? 1, { min: 0 });
  const concurrency = check.integer("concurrency", options.concurrency ?? 1, { min: 1 });
  const lockDuration = check.integer("lockDurationMs", options.lockDurationMs ?? 30_000, ms(MINIMUM.timeoutMs));
  const stalledInterval = check.integer("stalledIntervalMs", options.stalledIntervalMs ?? 30_000, ms(MINIMUM.intervalMs));
  const telemetry = checkTelemetry(check, options.telemetry);
  // Runs are journaled as requeued on a crash: BullMQ, not the journal's settling, ends a job
  // whose worker died (it runs it again), so a recovery pass never writes Error over a retry.
  const base = options.journal;
  const journal: MediaJournal = {
    location: base.location,
    add: (entry: JournalEntry) => base.add(entry.kind === "run" ? { ...entry, requeuedOnCrash: true } : entry),
    list: (id) => base.list(id),
    claim: (record) => base.claim(record),
    sweep: () => base.sweep(),
    close: () => base.close(),
  };
  const { Worker } = peerModule(bullmq, "startDetectionWorker");
  const worker = new Worker<DetectionJobData, Result>(
    name,
    async (job, _token, signal) => {
      const attempt = job.attemptsMade + 1;
      const last = attempt >= (job.opts.attempts ?? 1);
      // One tracked function per try: whether a failure is the run's end depends on the try.
      const tracked = trackMediaProcessing((media, context) => detect(media, { signal: context.signal, attempt }), {
        client,
        journal,
        ...(logger ? { logger } : {}),
        // BullMQ's UnrecoverableError ends the job at once: no try follows it.
        isFinalFailure: (error) => last || (error instanceof Error && error.name === "UnrecoverableError"),
      });
      return tracked.with(signal ? { signal } : {})(job.data);
    },
    {
      connection: options.connection,
      concurrency,
      lockDuration,
      stalledInterval,
      maxStalledCount,
      ...telemetry,
    },
  );
  worker.on("error", (error) => logger?.warn?.({ error: error.message }, "detection worker error"));
  // A job that will not come back: failed for good (its last try, or an UnrecoverableError), or
  // stalled once too often (BullMQ fails it when a worker next takes it, without a try). Its
  // record goes to Error here, journaled: written until it lands, and only over AIProcessing, so
  // a run that recorded its own end is left as it is. This holds whatever the last try managed
  // to record (its AIProcessing with no known outcome, say).
  worker.on("failed", (job) => {
    if (!job || !(job.deferredFailure || job.finishedOn)) return;
    logger?.warn?.({ id: job.data.id, jobId: job.id, reason: job.deferredFailure ?? job.failedReason }, "detection job given up");
    base
      .add({ kind: "run", id: normalizeMediaId(job.data.id), state: "settle", status: MediaStatus.Error, at: Date.now() })
      .then(() => settleInBackground(base, client, logger))
      .catch((error: unknown) => logger?.warn?.({ jobId: job.id, error: (error as Error)?.message }, "given-up detection job not journaled"));
  });
  return {
    close: (force = false) => worker.close(force),
  };
}
