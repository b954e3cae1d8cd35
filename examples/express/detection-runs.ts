// Detection of what was uploaded, and its answer: in this process under trackMediaProcessing
// (New -> AIProcessing -> AIProcessed, or Error), or on workers through the queue (200 with the
// result when it comes in time, else 202 with where to poll).
import type { Response } from "express";
import { setTimeout } from "node:timers/promises";
import {
  httpErrorFor,
  type IntakenMedia,
  isMediaIntakeError,
  type MediaRecord,
  MediaStatus,
  type MediaStatusChange,
  MediaStatusUpdateError,
  trackMediaProcessing,
} from "../../src/index.ts";
import type { DetectionQueue } from "../../src/queue/index.ts";
import { AppError, type DetectionsCaller, mediaFor } from "./authorize.ts";
import type { AppContext, QueuedDetection } from "./context.ts";
import { type Detection, detect } from "./detector.ts";

export interface DetectionRuns {
  /** The answer to an upload, or a rerun (already authorized); another user's record is shown without its owner. */
  answer(res: Response, media: MediaRecord | IntakenMedia, caller: DetectionsCaller, token: string | undefined, signal: AbortSignal, rerun?: boolean): Promise<void>;
  /**
   * Starts detection of a finished tus upload in this process and resolves once it has started:
   * from its AIProcessing on, the run's journal settles a crash. Whatever stops it sooner (the
   * AIProcessing not recorded, a crash) fails the finish, and the next one (the client's HEAD,
   * the sweep) starts it again. The run itself goes on after the answer.
   */
  startDetection(media: IntakenMedia, token: string | undefined): Promise<void>;
  /**
   * The outcome of the last run in this process of the media's detection (its detections, or its
   * error), for `GET /detections/:mediaId` without a queue; the last {@link LAST_RUNS_KEPT} media only.
   */
  lastRun(mediaId: string): LastRun | undefined;
}

/** What a run in this process ended with. */
export type LastRun = { detections: Detection[] } | { error: string };

/** How many media's last run outcomes the local poll keeps (the oldest forgotten first): a bound on memory. */
export const LAST_RUNS_KEPT = 1000;

/**
 * The file detection reads: the one the upload stored or found under the current folders, not the
 * record's `path` when that names a file that is not here (a moved volume: docs/express-example.md).
 */
const fileOf = (media: Partial<MediaRecord> & { file?: string }): string => media.file ?? media.path ?? "";

/** The detector on the media's file; a file that is not here (a rerun of a record of another folder) is a clear 409. */
async function detectOn(detector: NonNullable<AppContext["config"]["detector"]>, media: Partial<MediaRecord> & { id: string; file?: string }, signal: AbortSignal): Promise<Detection[]> {
  try {
    return await detector(fileOf(media), media.id, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException)?.code !== "ENOENT") throw error;
    throw new AppError(409, "MEDIA_FILE_MISSING", `The stored file of media ${media.id} is not in this service's folders; upload its content again to store it here.`, { mediaId: media.id });
  }
}

export function createDetectionRuns(context: AppContext): DetectionRuns {
  const { client, directories, durability, logger, queue, detectorDelayMs, authorize, config } = context;

  /**
   * Detection under trackMediaProcessing: New -> AIProcessing -> AIProcessed, or Error. One
   * tracked function for the app, so duplicate uploads in flight share one run; each request
   * brings its token and its signal (a client that goes away stops waiting; the run stops when
   * nobody waits any more, its Error written in the background).
   */
  const detection = trackMediaProcessing(
    async (media, { signal }) => {
      // Kept before the run returns, so that a poll that sees the record AIProcessed (or Error) finds it.
      try {
        if (detectorDelayMs > 0) await setTimeout(detectorDelayMs, undefined, { signal });
        const detections = await detectOn(config.detector ?? detect, media, signal);
        keepLastRun(media.id, { detections });
        return detections;
      } catch (error) {
        keepLastRun(media.id, { error: error instanceof Error ? error.message : String(error) });
        throw error;
      }
    },
    {
      client,
      directories,
      durability,
      logger,
      onStatusChange: (change) => {
        runStarted(change);
        const watched = lastChanges.get(change.id);
        if (watched) watched.change = change;
      },
    },
  );

  /**
   * Detection for a caller who may not see the record (a second uploader of another user's
   * content): their answer, with the record left alone. Their upload must not move another
   * user's record, nor end it in Error when they go away (docs/authorization.md).
   */
  const detectUntracked = async (media: MediaRecord | IntakenMedia, signal: AbortSignal) => {
    if (detectorDelayMs > 0) await setTimeout(detectorDelayMs, undefined, { signal });
    return detectOn(config.detector ?? detect, media, signal);
  };

  /** The outcome of the last tracked run of each media, by media ID, oldest first (a Map keeps insertion order). */
  const lastRuns = new Map<string, LastRun>();
  function keepLastRun(id: string, run: LastRun): void {
    lastRuns.delete(id);
    lastRuns.set(id, run);
    for (const oldest of lastRuns.keys()) {
      if (lastRuns.size <= LAST_RUNS_KEPT) break;
      lastRuns.delete(oldest);
    }
  }

  /** The last status change of the runs a local answer waits on, by media ID. */
  const lastChanges = new Map<string, { waiting: number; change?: MediaStatusChange }>();

  const answerLocally = async (res: Response, media: MediaRecord | IntakenMedia, token: string | undefined, signal: AbortSignal, seesRecord: boolean) => {
    const watched = lastChanges.get(media.id) ?? { waiting: 0 };
    watched.waiting += 1;
    lastChanges.set(media.id, watched);
    try {
      const detections = seesRecord ? await detection.with({ ...(token ? { token } : {}), signal })(media) : await detectUntracked(media, signal);
      const record = await client.media.get(media.id, token ? { token } : {}).catch((error: unknown) => {
        if (httpErrorFor(error).status < 500) throw error;
        return undefined;
      });
      if (record) return void res.json({ media: mediaFor({ ...media, ...record }, seesRecord), detections });
      // The work is done but the record cannot be read back (the service went away during the
      // detection; the run's final status is journaled and lands later): what is known, answered
      // as the other "kept, record pending" answers are, with the media ID and the detections.
      const { change } = watched;
      const status = seesRecord && change ? { mediaStatus: change.to, statusPending: change.pending === true } : {};
      logger.warn({ id: media.id }, "detection ran, but its record could not be read back; answered with what is known");
      res
        .status(503)
        .set("retry-after", "5")
        .json({
          error: {
            code: "MEDIA_RECORD_PENDING",
            message: `The media ${media.id} are stored and their detection ran (its detections are in this answer); their record could not be read back, and its status is written once the annotations service answers. Read the media by its ID later.`,
            mediaId: media.id,
          },
          media: { ...mediaFor(media as MediaRecord, seesRecord), ...status },
          detections,
        });
    } finally {
      watched.waiting -= 1;
      if (watched.waiting === 0 && lastChanges.get(media.id) === watched) lastChanges.delete(media.id);
    }
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
    const { id, mediaType, name, userId } = media;
    const job = { id, path: fileOf(media), mediaType, name, userId };
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

  /** Finished tus uploads waiting for their run to start (its AIProcessing recorded), by media ID. */
  const runStarts = new Map<string, Set<() => void>>();
  function runStarted(change: { id: string; to: MediaStatus; error?: unknown }): void {
    if (change.to !== MediaStatus.AIProcessing || change.error !== undefined) return;
    for (const started of runStarts.get(change.id) ?? []) started();
  }

  return {
    lastRun: (mediaId) => lastRuns.get(mediaId),

    async answer(res, media, caller, token, signal, rerun = false) {
      const seesRecord = rerun || (await authorize(Object.freeze({ ...media }), Object.freeze({ ...caller })));
      return queue ? answerQueued(queue, res, media, token, signal, rerun, seesRecord) : answerLocally(res, media, token, signal, seesRecord);
    },

    async startDetection(media, token) {
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
    },
  };
}
