import { type AnnotationsClient, type MediaRecord, MediaStatus, mediaStatusName } from "../annotations/index.ts";
import { MediaBusyError, MediaStatusUpdateError } from "../errors/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import type { StorageDirectories } from "../storage/index.ts";
import { raceAbort } from "../utils/byte-source.ts";
import { addJournalEntry, checkLeaseMs, DEFAULT_LEASE_MS, type JournalHandle } from "./journal.ts";

/** A pino-compatible logger; every method is optional. */
export interface LifecycleLogger {
  debug?(fields: Record<string, unknown>, message?: string): void;
  info?(fields: Record<string, unknown>, message?: string): void;
  warn?(fields: Record<string, unknown>, message?: string): void;
}

/** One status change, handed to `onStatusChange` frozen. */
export interface MediaStatusChange {
  readonly id: string;
  /** The status the record left, as this run knew it (`undefined` when it was not known). */
  readonly from: number | undefined;
  readonly to: MediaStatus;
  readonly at: Date;
  /** Set when the change could not be recorded; the record then still holds `from`. */
  readonly error?: unknown;
}

/** The media handed to the tracked function: the record when one was given, else its ID. */
export type TrackedMedia = Pick<MediaRecord, "id"> & Partial<MediaRecord>;

/** The second argument of the tracked function. */
export interface ProcessingContext {
  /** Aborts with the run: pass it to the detector's I/O. */
  readonly signal: AbortSignal;
}

/** Options of {@link trackMediaProcessing}. */
export interface TrackMediaProcessingOptions {
  /** The annotations client that records the statuses (its retry policy applies to them). */
  client: AnnotationsClient;
  /** The bearer token for the status updates, or a function that gives it; else the client's. */
  token?: string | (() => string | Promise<string>);
  /**
   * Aborts the run: the status becomes Error and the call rejects with `signal.reason` at
   * once (the function is told through `context.signal`).
   */
  signal?: AbortSignal;
  /**
   * Called after every status change, recorded or not (then with `error`). A throw inside it is
   * logged and ignored: it never changes the run's outcome.
   */
  onStatusChange?: (change: MediaStatusChange) => void;
  /** Gets a line per status change (`info`) and per failed one (`warn`). */
  logger?: LifecycleLogger;
  /**
   * The storage directories, to journal each run so that {@link recoverInterrupted} can set
   * Error on a run a crash cut off. Without them, nothing is journaled.
   */
  directories?: StorageDirectories;
  /** Lease of the journal entries, renewed while the run lives. @default 30_000 */
  leaseMs?: number;
}

/** IDs being processed in this process. */
const running = new Set<string>();

/**
 * Wraps a detection function so that the media's status follows it (SPEC.md "MediaStatus"):
 * AIProcessing before it runs, AIProcessed when it succeeds, Error when it throws or is aborted.
 *
 * The returned function takes the media (a record or its ID) and the function's own arguments,
 * and resolves to the function's result.
 * - AIProcessing cannot be recorded: the function is not run; {@link MediaStatusUpdateError}.
 * - The function fails: Error is recorded and the very error it threw is rethrown; if recording
 *   Error fails too, that failure is attached to the error as `mediaStatusUpdateError`.
 * - AIProcessed cannot be recorded: {@link MediaStatusUpdateError} with the result in `result`.
 * - The same ID already running in this process: {@link MediaBusyError}, nothing run.
 *
 * @example
 * const detect = trackMediaProcessing(async (media, { signal }) => runDetector(media.path, signal), { client, token });
 * const detections = await detect(record);
 */
export function trackMediaProcessing<Args extends unknown[], Result>(
  fn: (media: TrackedMedia, context: ProcessingContext, ...args: Args) => Result | Promise<Result>,
  options: TrackMediaProcessingOptions,
): (media: TrackedMedia | string, ...args: Args) => Promise<Result> {
  if (typeof fn !== "function") throw new TypeError("Expected the processing function to be a function.");
  if (!options?.client?.media) throw new TypeError("Expected `client` to be an annotations client.");
  const leaseMs = checkLeaseMs(options.leaseMs ?? DEFAULT_LEASE_MS);
  const { client, logger, directories } = options;

  return async (input, ...args) => {
    const media: TrackedMedia = Object.freeze(typeof input === "string" ? { id: input } : { ...input });
    const id = normalizeMediaId(media.id);
    const signal = options.signal ?? new AbortController().signal;
    signal.throwIfAborted();
    if (running.has(id)) throw new MediaBusyError(id);
    running.add(id);
    let journal: JournalHandle | undefined;
    let status: number | undefined = media.mediaStatus;

    /** Records `to`; on failure reports it and resolves to the error instead of throwing. */
    const record = async (to: MediaStatus, withSignal: boolean): Promise<unknown> => {
      const token = typeof options.token === "function" ? await options.token() : options.token;
      const from = status;
      let failure: unknown;
      try {
        await client.media.updateStatus(id, to, { ...(token ? { token } : {}), ...(withSignal ? { signal } : {}) });
        status = to;
        logger?.info?.({ id, from, to }, `media status ${mediaStatusName(to)}`);
      } catch (error) {
        failure = error;
        logger?.warn?.({ id, from, to, error: (error as Error).message }, `media status ${mediaStatusName(to)} not recorded`);
      }
      if (options.onStatusChange) {
        const change: MediaStatusChange = Object.freeze({ id, from, to, at: new Date(), ...(failure === undefined ? {} : { error: failure }) });
        try {
          options.onStatusChange(change);
        } catch (hookError) {
          logger?.warn?.({ id, error: (hookError as Error).message }, "onStatusChange threw; ignored");
        }
      }
      return failure;
    };

    try {
      if (directories) journal = await addJournalEntry(directories, { kind: "processing", id }, leaseMs);
      const notStarted = await record(MediaStatus.AIProcessing, true);
      if (notStarted !== undefined) {
        if (signal.aborted) throw signal.reason;
        throw new MediaStatusUpdateError(id, status, MediaStatus.AIProcessing, "AIProcessing", notStarted);
      }
      let result: Result;
      try {
        result = await raceAbort(Promise.resolve().then(() => fn(media, Object.freeze({ signal }), ...args)), signal);
      } catch (error) {
        const failed = await record(MediaStatus.Error, false);
        if (failed !== undefined && error !== null && typeof error === "object" && Object.isExtensible(error)) {
          Object.defineProperty(error, "mediaStatusUpdateError", { value: failed, enumerable: true, configurable: true, writable: true });
        }
        throw error;
      }
      const unrecorded = await record(MediaStatus.AIProcessed, false);
      if (unrecorded !== undefined) {
        throw new MediaStatusUpdateError(id, status, MediaStatus.AIProcessed, "AIProcessed", unrecorded, { value: result });
      }
      return result;
    } finally {
      running.delete(id);
      await journal?.remove();
    }
  };
}
