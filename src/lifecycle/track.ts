import { type AnnotationsClient, type MediaRecord, MediaStatus, mediaStatusName } from "../annotations/index.ts";
import { JournalUnavailableError, MediaStatusUpdateError } from "../errors/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import type { StorageDirectories } from "../storage/index.ts";
import { ATTR, inSpan, recordProcessing, recordStatusChange, type Span, SPAN, STATUS_CHANGE_EVENT, type StatusResult } from "../telemetry/index.ts";
import { checkOptionsOf, type Durability, durabilityOf, raceAbort, showValue } from "../utils/index.ts";
import { fileJournalFor, type JournalHandle, type MediaJournal } from "../journal/index.ts";
import { isDefiniteRefusal, type LifecycleLogger, settleInBackground, withMediaLock } from "./settle.ts";

/** One status change, handed to `onStatusChange` frozen. */
export interface MediaStatusChange {
  readonly id: string;
  /** The status the record left, as this run knew it (`undefined` when it was not known). */
  readonly from: number | undefined;
  readonly to: MediaStatus;
  readonly at: Date;
  /** Set when the change could not be recorded now. */
  readonly error?: unknown;
  /**
   * `true` when the change did not land now but is journaled and written in the background
   * until it lands (after a restart too).
   */
  readonly pending?: boolean;
}

/** The media handed to the tracked function: the record when one was given, else its ID. */
export type TrackedMedia = Pick<MediaRecord, "id"> & Partial<MediaRecord>;

/** The second argument of the tracked function. */
export interface ProcessingContext {
  /** Aborts with the run (when every caller waiting on it has aborted): pass it to the detector's I/O. */
  readonly signal: AbortSignal;
}

/** Per-call options, for {@link TrackedProcessing.with}. */
export interface TrackCallOptions {
  /** The bearer token for this call's status updates, or a function that gives it. */
  token?: string | (() => string | Promise<string>);
  /**
   * Stops waiting: the call rejects with `signal.reason` at once. The run itself is aborted
   * (its status Error, written in the background) when no other caller waits on it.
   */
  signal?: AbortSignal;
}

/** Options of {@link trackMediaProcessing}. */
export interface TrackMediaProcessingOptions extends TrackCallOptions {
  /** The annotations client that records the statuses (its retry policy applies to them). */
  client: AnnotationsClient;
  /**
   * Called after every status change, recorded or not (then with `error`). A throw inside it is
   * logged and ignored: it never changes the run's outcome.
   */
  onStatusChange?: (change: MediaStatusChange) => void;
  /** Gets a line per status change (`info`) and per failed one (`warn`). */
  logger?: LifecycleLogger;
  /**
   * The storage directories: each run is journaled in their file journal, so that its outcome
   * is never lost (see {@link trackMediaProcessing}). Without them (or `journal`), nothing is
   * journaled and a status that cannot be written is only reported.
   */
  directories?: StorageDirectories;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/journal/redis`). */
  journal?: MediaJournal;
  /**
   * What the directories' file journal promises of a run's outcome once it is written:
   * `"process"` it survives a crash, `"power"` a power cut too; see {@link Durability}. Give the
   * intake's setting. Not used with `journal` (its engine decides).
   * @default "process"
   */
  durability?: Durability;
  /**
   * For callers that retry (a queue's attempts): told the function's error, says whether this
   * failure ends the run. `false` leaves the record in AIProcessing for the next try, and records
   * nothing; the call still rejects with the error. An abort always ends the run. Also told the
   * failure to record AIProcessing: `true` (no try follows) moves a record an earlier try left in
   * AIProcessing to Error, in the background.
   * @default every failure ends the run (Error is recorded)
   */
  isFinalFailure?: (error: unknown) => boolean;
}

/** The tracked function: call it with the media (a record or its ID) and the function's own arguments. */
export interface TrackedProcessing<Args extends unknown[], Result> {
  (media: TrackedMedia | string, ...args: Args): Promise<Result>;
  /** The same tracked function with a token or signal of this call (joins the same runs). */
  with(call: TrackCallOptions): (media: TrackedMedia | string, ...args: Args) => Promise<Result>;
}

interface Run {
  readonly owner: object;
  promise: Promise<unknown>;
  readonly controller: AbortController;
  waiting: number;
}

/** What a run's telemetry needs: the status it ended with, and its span while the run lasts. */
interface RunSeen {
  final: string | undefined;
  span: Span | undefined;
}

/** The statuses' names, for telemetry, without a lookup that allocates per change. */
const statusNames: Readonly<Record<number, string>> = Object.fromEntries(Object.values(MediaStatus).map((status) => [status, mediaStatusName(status)]));
const statusName = (status: number): string => statusNames[status] ?? mediaStatusName(status);

/** Runs in flight in this process, by media ID. */
const runs = new Map<string, Run>();

function isTokenOption(value: unknown): boolean {
  return value === undefined || typeof value === "string" || typeof value === "function";
}

/**
 * Wraps a detection function so that the media's status follows it (docs/contract.md "MediaStatus"):
 * AIProcessing before it runs, AIProcessed when it succeeds, Error when it throws or is aborted.
 *
 * - **Duplicates share one run.** A call for an ID this tracked function is already running in
 *   this process joins that run and gets its result; a call from another tracked function runs
 *   after it.
 * - **AIProcessing not recorded**: the function is not run; {@link MediaStatusUpdateError}.
 *   When the outcome of that update is not known, a journaled run checks it in the background
 *   and moves a record left in AIProcessing to Error.
 * - **The function fails**: Error is recorded and the very error it threw is rethrown.
 * - **An abort** rejects at once with `signal.reason`; Error is recorded in the background.
 * - **The final status cannot be written now** (the service down past the client's deadline):
 *   with a journal (`directories` or `journal`), the call resolves to the result (or rethrows
 *   the function's error) and the status is written in the background until it lands, after a
 *   restart too (`onStatusChange` is told `pending: true`). Without a journal, the result comes
 *   in a {@link MediaStatusUpdateError}'s `result`, and an Error update's failure is attached
 *   to the function's error as `mediaStatusUpdateError`.
 *
 * @example
 * const detect = trackMediaProcessing(async (media, { signal }) => runDetector(media.path, signal), { client, directories });
 * const detections = await detect.with({ token: callerJwt, signal })(record);
 */
export function trackMediaProcessing<Args extends unknown[], Result>(
  fn: (media: TrackedMedia, context: ProcessingContext, ...args: Args) => Result | Promise<Result>,
  options: TrackMediaProcessingOptions,
): TrackedProcessing<Args, Result> {
  if (typeof fn !== "function") throw new TypeError(`trackMediaProcessing: expected the processing function to be a function, got ${showValue(fn)}.`);
  const check = checkOptionsOf("trackMediaProcessing");
  check.known(options, ["client", "token", "signal", "onStatusChange", "logger", "directories", "journal", "durability", "isFinalFailure"]);
  const durability = durabilityOf({ durability: options?.durability }, check);
  check.func("isFinalFailure", options?.isFinalFailure);
  check.func("onStatusChange", options?.onStatusChange);
  if (!options?.client?.media) check.fail("client", "an annotations client", options?.client);
  if (!isTokenOption(options.token)) check.fail("token", "a string or a function", options.token);
  const { client, logger } = options;
  const journal = options.journal ?? (options.directories ? fileJournalFor(options.directories, { durability }, check) : undefined);
  const owner = {};

  /** Records `to`; resolves to the failure instead of throwing, so it never replaces an outcome. */
  async function record(id: string, to: MediaStatus, from: number | undefined, call: TrackCallOptions, signal?: AbortSignal): Promise<unknown> {
    let failure: unknown;
    try {
      const token = typeof call.token === "function" ? await call.token() : call.token;
      await client.media.updateStatus(id, to, { ...(token ? { token } : {}), ...(signal ? { signal } : {}) });
      logger?.info?.({ id, from, to }, `media status ${mediaStatusName(to)}`);
    } catch (error) {
      failure = error ?? new Error("the status update failed");
      logger?.warn?.({ id, from, to, error: (failure as Error).message }, `media status ${mediaStatusName(to)} not recorded`);
    }
    return failure;
  }

  /** Tells the change to telemetry (an event on the run's span while it records) and to `onStatusChange`. */
  function report(change: Omit<MediaStatusChange, "at">, span: Span | undefined): void {
    const result: StatusResult = change.pending ? "pending" : change.error === undefined ? "applied" : "failed";
    const status = statusName(change.to);
    recordStatusChange(status, result);
    if (span) {
      const from = change.from === undefined ? {} : { [ATTR.previousStatus]: statusName(change.from) };
      span.addEvent(STATUS_CHANGE_EVENT, { [ATTR.status]: status, [ATTR.result]: result, ...from });
    }
    if (!options.onStatusChange) return;
    try {
      options.onStatusChange(Object.freeze({ ...change, at: new Date() }));
    } catch (hookError) {
      logger?.warn?.({ id: change.id, error: (hookError as Error)?.message }, "onStatusChange threw; ignored");
    }
  }

  /** Whether a failure ends the run; a throwing `isFinalFailure` counts as yes. */
  function isFinal(error: unknown): boolean {
    try {
      return options.isFinalFailure?.(error) !== false;
    } catch {
      return true;
    }
  }

  /** Removes or hands over the entry; a failure here is logged, never thrown over the outcome. */
  async function finish(entry: JournalHandle | undefined, handOver: false | { status?: MediaStatus }): Promise<boolean> {
    if (!entry || !journal) return false;
    try {
      if (handOver === false) {
        await entry.remove();
        return false;
      }
      await entry.update({ state: "settle", ...handOver });
      settleInBackground(journal, client, logger);
      return true;
    } catch (error) {
      logger?.warn?.({ id: entry.entry.id, error: (error as Error)?.message }, "media journal entry not updated");
      return handOver !== false;
    }
  }

  /**
   * One run in its span (`media_intake.track`), timed to its final status: the processing
   * duration is recorded by the status the run ended with (AIProcessing: a try its caller
   * repeats), once the function has run.
   */
  function observed(media: TrackedMedia, id: string, args: Args, call: TrackCallOptions, signal: AbortSignal): Promise<Result> {
    const started = performance.now();
    const run: RunSeen = { final: undefined, span: undefined };
    return inSpan(SPAN.track, async (span) => {
      run.span = span;
      span?.setAttribute(ATTR.mediaId, id);
      try {
        return await execute(media, id, args, call, signal, run);
      } finally {
        // Changes reported after the run (an abort's Error, written in the background) go to metrics only.
        run.span = undefined;
        if (run.final !== undefined) {
          recordProcessing(run.final, (performance.now() - started) / 1000);
          span?.setAttribute(ATTR.status, run.final);
        }
      }
    });
  }

  async function execute(media: TrackedMedia, id: string, args: Args, call: TrackCallOptions, signal: AbortSignal, run: RunSeen): Promise<Result> {
    // Added under the ID's lock: a background settling of an older run of this ID never
    // overwrites this run's AIProcessing.
    const entry = journal
      ? await withMediaLock(id, () => journal.add({ kind: "run", id, state: "active", at: Date.now() })).catch((error: unknown) => {
          // Nothing ran and nothing changed: the media stay as they were (New), which the answer says.
          throw new JournalUnavailableError(`Starting the tracked run of media ${id}: its journal entry could not be written`, journal.location, error, { keptMediaId: id });
        })
      : undefined;
    const before = media.mediaStatus;
    const notStarted = await record(id, MediaStatus.AIProcessing, before, call, signal);
    if (notStarted !== undefined) {
      // A caller that retries may have left the record in AIProcessing on an earlier try: when no
      // try follows this one, the record goes to Error (over AIProcessing only). Otherwise:
      // refused for good, the record did not move; else it may have: check it later.
      const lastTry = options.isFinalFailure !== undefined && isFinal(notStarted);
      const pending = await finish(entry, lastTry ? { status: MediaStatus.Error } : isDefiniteRefusal(notStarted) ? false : {});
      report({ id, from: before, to: MediaStatus.AIProcessing, error: notStarted, ...(pending ? { pending } : {}) }, run.span);
      if (signal.aborted) throw signal.reason;
      throw new MediaStatusUpdateError(id, before, MediaStatus.AIProcessing, "AIProcessing", notStarted);
    }
    report({ id, from: before, to: MediaStatus.AIProcessing }, run.span);
    let outcome: { ok: true; value: Result } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await raceAbort(Promise.resolve().then(() => fn(media, Object.freeze({ signal }), ...args)), signal) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const final = outcome.ok ? MediaStatus.AIProcessed : MediaStatus.Error;
    run.final = statusName(signal.aborted ? MediaStatus.Error : final);
    // A try its caller repeats (a queue's next attempt): the record stays in AIProcessing, and
    // the next try (or the last one's Error) moves it on.
    if (!outcome.ok && !signal.aborted && options.isFinalFailure && !isFinal(outcome.error)) {
      run.final = statusName(MediaStatus.AIProcessing);
      await finish(entry, false);
      throw outcome.error;
    }
    if (signal.aborted) {
      // Every caller has gone already: Error is written in the background, journaled.
      void (async () => {
        await entry?.update({ status: MediaStatus.Error }).catch(() => {});
        return record(id, MediaStatus.Error, MediaStatus.AIProcessing, call);
      })().then(
        async (failed) => {
          const pending = failed !== undefined && (await finish(entry, isDefiniteRefusal(failed) ? false : { status: MediaStatus.Error }));
          if (failed === undefined) await finish(entry, false);
          report({ id, from: MediaStatus.AIProcessing, to: MediaStatus.Error, ...(failed === undefined ? {} : { error: failed }), ...(pending ? { pending } : {}) }, run.span);
        },
      );
      throw signal.reason;
    }
    // The outcome is made durable before it is sent: a crash from here on still ends the record with it.
    await entry?.update({ status: final }).catch((error: unknown) => logger?.warn?.({ id, error: (error as Error)?.message }, "media journal entry not updated"));
    const failed = await record(id, final, MediaStatus.AIProcessing, call);
    const pending = failed !== undefined && (await finish(entry, isDefiniteRefusal(failed) ? false : { status: final }));
    if (failed === undefined) await finish(entry, false);
    report({ id, from: MediaStatus.AIProcessing, to: final, ...(failed === undefined ? {} : { error: failed }), ...(pending ? { pending } : {}) }, run.span);
    if (!outcome.ok) {
      const { error } = outcome;
      if (failed !== undefined && !pending && error !== null && typeof error === "object" && Object.isExtensible(error)) {
        Object.defineProperty(error, "mediaStatusUpdateError", { value: failed, enumerable: true, configurable: true, writable: true });
      }
      throw error;
    }
    if (failed !== undefined && !pending) {
      throw new MediaStatusUpdateError(id, MediaStatus.AIProcessing, MediaStatus.AIProcessed, "AIProcessed", failed, { value: outcome.value });
    }
    return outcome.value;
  }

  /** Waits on a run, or stops waiting at once when this caller's signal aborts. */
  function wait(run: Run, signal: AbortSignal | undefined): Promise<Result> {
    run.waiting += 1;
    const done = run.promise as Promise<Result>;
    if (!signal) return done.finally(() => (run.waiting -= 1));
    return raceAbort(done, signal).finally(() => {
      run.waiting -= 1;
      // Nobody waits any more: the run itself stops.
      if (signal.aborted && run.waiting === 0) run.controller.abort(signal.reason);
    });
  }

  async function start(input: TrackedMedia | string, args: Args, call: TrackCallOptions): Promise<Result> {
    if (!isTokenOption(call.token)) checkOptionsOf("a tracked function").fail("token", "a string or a function", call.token);
    const media: TrackedMedia = Object.freeze(typeof input === "string" ? { id: input } : { ...input });
    const id = normalizeMediaId(media.id);
    call.signal?.throwIfAborted();
    for (;;) {
      const running = runs.get(id);
      if (!running) break;
      if (running.owner === owner && !running.controller.signal.aborted) return wait(running, call.signal);
      // Another function's run (or one being aborted): this one runs after it.
      await (call.signal ? raceAbort(running.promise, call.signal) : running.promise).catch((error: unknown) => {
        if (call.signal?.aborted) throw error;
      });
    }
    const controller = new AbortController();
    const run: Run = { owner, controller, waiting: 0, promise: Promise.resolve() };
    const promise = observed(media, id, args, call, controller.signal).finally(() => {
      if (runs.get(id) === run) runs.delete(id);
    });
    // Seen by the waiters; a run every waiter left must not be an unhandled rejection.
    promise.catch(() => {});
    runs.set(id, Object.assign(run, { promise }));
    return wait(run, call.signal);
  }

  const tracked = ((media: TrackedMedia | string, ...args: Args) => start(media, args, options)) as TrackedProcessing<Args, Result>;
  tracked.with = (call) => {
    checkOptionsOf("a tracked function's `with`").known(call, ["token", "signal"]);
    return (media, ...args) => start(media, args, { token: call.token ?? options.token, signal: call.signal ?? options.signal });
  };
  return tracked;
}
