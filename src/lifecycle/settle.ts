// Settling the journal: finishing what an owner handed over or left behind when it died. One
// pass groups the entries by media ID and never acts on an ID while a live process works on it.
import { stat, unlink } from "node:fs/promises";
import { type AnnotationsClient, type MediaRecord, MediaStatus, mediaStatusName } from "../annotations/index.ts";
import { AnnotationsHttpError, AnnotationsRouteMissingError, MediaNotFoundError } from "../errors/index.ts";
import { computeMediaId } from "../media-id/index.ts";
import { restoreRetiredFile, retireStoredFile } from "../storage/index.ts";
import { ATTR, inSpan, recordSettle, recordStatusChange, setJournalPending, SPAN } from "../telemetry/index.ts";
import { createKeyedLock } from "../utils/index.ts";
import type { IntakeJournalEntry, JournalHandle, JournalRecord, MediaJournal, RunJournalEntry } from "../journal/index.ts";

/** A pino-compatible logger; every method is optional. */
export interface LifecycleLogger {
  debug?(fields: Record<string, unknown>, message?: string): void;
  info?(fields: Record<string, unknown>, message?: string): void;
  warn?(fields: Record<string, unknown>, message?: string): void;
  /** A misconfiguration to fix (the annotations route missing); `warn` when absent. */
  error?(fields: Record<string, unknown>, message?: string): void;
}

/** What one settling pass did (every list holds media IDs). */
export interface SettleReport {
  /** Records created for files whose intake was cut off or whose create had no known outcome. */
  readonly recordsCreated: string[];
  /** Files removed: the service refused their record for good, or another file holds the same content. */
  readonly filesRemoved: string[];
  /** Records of runs that were cut off, moved from AIProcessing to Error. */
  readonly markedError: string[];
  /** Final statuses (AIProcessed or Error) that a run ended with and that have now landed. */
  readonly statusesWritten: string[];
  /** Entries that needed nothing more (the record was there, or a newer run had moved on). */
  readonly alreadyConsistent: string[];
  /** Entries of live work (any process), left alone. */
  readonly live: number;
  /** Entries that could not be settled now (the service unreachable, say): kept for the next pass. */
  readonly failed: Array<{ readonly id: string; readonly error: unknown }>;
}

/** `deferred`: another upload of the content still wants the file; the entry waits for the next pass. */
type Outcome = "recordsCreated" | "filesRemoved" | "markedError" | "statusesWritten" | "alreadyConsistent" | "deferred";

/** What a settling call sends: the service's token (else the client's own). */
export interface SettleCall {
  token?: string;
  signal?: AbortSignal;
}

/** Whether the service's error answer carries the contract's problem body (a `title` or a `detail`), as annotations/response.ts reads it. */
function saidByTheService(error: AnnotationsHttpError): boolean {
  return Boolean(error.problem?.title || error.problem?.detail);
}

/**
 * A refusal the service will repeat: a 4xx other than 408, 409 and 429 that carries the
 * contract's problem body (a 401 or 403 need none: a token refused is refused whatever the body;
 * when `authCounts` is false they do not count, a service token that is refused being a
 * configuration to fix, not a verdict on the media). A missing route
 * ({@link AnnotationsRouteMissingError}: a 405, a 404 to the create, a 404 without a problem
 * body) is a misconfiguration, never a refusal, and so is a 4xx without a problem body (a proxy's
 * or another service's page, at a wrong base URL): the outcome is not known. So is anything else
 * (a timeout, a reset, a 5xx, an answer that could not be read, an abort).
 */
export function isDefiniteRefusal(error: unknown, authCounts = true): error is AnnotationsHttpError {
  if (!(error instanceof AnnotationsHttpError) || error instanceof AnnotationsRouteMissingError) return false;
  const { status } = error;
  if (status < 400 || status >= 500 || status === 408 || status === 409 || status === 429) return false;
  if (status === 401 || status === 403) return authCounts;
  return saidByTheService(error);
}

/**
 * The record, `undefined` only when the service said there is none: a 404 with the contract's
 * problem body. Any other failure throws, a 404 without a problem body (a wrong base path) too:
 * whether a record exists is not known, and nothing may be removed on it.
 */
export async function getRecord(client: AnnotationsClient, id: string, call: SettleCall): Promise<MediaRecord | undefined> {
  try {
    return await client.media.get(id, call);
  } catch (error) {
    if (error instanceof MediaNotFoundError && saidByTheService(error)) return undefined;
    throw error;
  }
}

/** What {@link removeMediaFile} did: removed it, found none, or kept it for a record or another upload. */
export type MediaFileRemoval = "removed" | "absent" | "named-by-record" | "wanted-by-upload";

/**
 * Removes a stored file unless anything may rely on it: another intake of the same content
 * (any process, journaled before it touches the file), or a record that names it. The file is
 * first moved aside, so an upload arriving meanwhile places its own copy; it is put back when a
 * reliance shows up or the record cannot be read (then this throws).
 */
export async function removeMediaFile(
  journal: MediaJournal,
  client: AnnotationsClient,
  id: string,
  path: string,
  ownKeys: ReadonlySet<string>,
  call: SettleCall,
): Promise<MediaFileRemoval> {
  const retired = await retireStoredFile(path);
  if (!retired) return "absent";
  try {
    const others = (await journal.list(id)).filter((other) => other.entry.kind === "intake" && !ownKeys.has(other.key));
    if (others.length > 0) {
      await restoreRetiredFile(retired, path);
      return "wanted-by-upload";
    }
    if ((await getRecord(client, id, call))?.path === path) {
      await restoreRetiredFile(retired, path);
      return "named-by-record";
    }
  } catch (error) {
    await restoreRetiredFile(retired, path);
    throw error;
  }
  await unlink(retired);
  return "removed";
}

async function isCompleteFile(path: string, id: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile() && (await computeMediaId(path)) === id;
  } catch {
    return false;
  }
}

/** The line logged when a refused upload's file goes: never silent. */
export const REFUSED_FILE_REMOVED = "refused upload's file removed: the annotations service has no record of it, and no other upload wants it";

/**
 * Removes the files of refused intakes, each logged at `warn` with why (`refusal`: the service's
 * error, or a word on the refusal an earlier pass saw); `deferred` while another upload of the
 * content still wants one.
 */
async function removeRefusedFiles(
  journal: MediaJournal,
  client: AnnotationsClient,
  id: string,
  entries: IntakeJournalEntry[],
  ownKeys: ReadonlySet<string>,
  call: SettleCall,
  logger: LifecycleLogger | undefined,
  refusal: string,
): Promise<Outcome> {
  let outcome: Outcome = "alreadyConsistent";
  for (const entry of entries) {
    const removal = await removeMediaFile(journal, client, id, entry.path, ownKeys, call);
    if (removal === "wanted-by-upload") return "deferred";
    if (removal === "removed") {
      outcome = "filesRemoved";
      logger?.warn?.({ id, path: entry.path, error: refusal }, REFUSED_FILE_REMOVED);
    }
  }
  return outcome;
}

async function settleIntakes(
  journal: MediaJournal,
  client: AnnotationsClient,
  id: string,
  handles: JournalHandle[],
  call: SettleCall,
  logger: LifecycleLogger | undefined,
): Promise<Outcome> {
  const entries = handles.map((handle) => handle.entry as IntakeJournalEntry);
  const ownKeys = new Set(handles.map((handle) => handle.key));
  let outcome: Outcome = "alreadyConsistent";
  let record = await getRecord(client, id, call);
  if (!record && entries.every((entry) => entry.refused)) {
    return removeRefusedFiles(journal, client, id, entries, ownKeys, call, logger, "its create was refused by the annotations service earlier");
  }
  if (!record) {
    let candidate: IntakeJournalEntry | undefined;
    for (const entry of entries) if (!candidate && !entry.refused && (await isCompleteFile(entry.path, id))) candidate = entry;
    // No complete file: the intake never placed it, so no record can be missing.
    if (!candidate) return outcome;
    try {
      const made = await client.media.createOrGet(
        { id, name: candidate.name, path: candidate.path, mediaType: candidate.mediaType, userId: candidate.userId },
        call,
      );
      record = made.record;
      if (made.created) {
        outcome = "recordsCreated";
        recordStatusChange("New", "applied");
      }
    } catch (error) {
      if (!isDefiniteRefusal(error, false)) throw error;
      return removeRefusedFiles(journal, client, id, entries, ownKeys, call, logger, error.message);
    }
  }
  // One content, one file: a file these intakes placed beside the one the record names goes.
  const named = record.path;
  if (await isCompleteFile(named, id)) {
    for (const entry of entries) {
      if (entry.path !== named && (await removeMediaFile(journal, client, id, entry.path, ownKeys, call)) === "removed") {
        outcome = outcome === "alreadyConsistent" ? "filesRemoved" : outcome;
      }
    }
  }
  return outcome;
}

async function settleRuns(client: AnnotationsClient, id: string, handles: JournalHandle[], call: SettleCall): Promise<Outcome> {
  // The newest run decides; older ones are superseded by it.
  const newest = handles.map((handle) => handle.entry as RunJournalEntry).reduce((a, b) => (b.at > a.at ? b : a));
  // A queue's job cut off by a crash runs again (or its queue gives up and says so): not ours to end.
  if (newest.status === undefined && newest.requeuedOnCrash) return "alreadyConsistent";
  const record = await getRecord(client, id, call);
  // Only a record still in AIProcessing waits for this run's end; otherwise a newer run (or a
  // person) has moved it on, and an old outcome must not overwrite that.
  if (record?.mediaStatus !== MediaStatus.AIProcessing) return "alreadyConsistent";
  const status = newest.status ?? MediaStatus.Error;
  try {
    await client.media.updateStatus(id, status, call);
  } catch (error) {
    if (error instanceof MediaNotFoundError) return "alreadyConsistent";
    throw error;
  }
  recordStatusChange(mediaStatusName(status), "applied");
  return newest.status === undefined ? "markedError" : "statusesWritten";
}

/** Whether a process is working on the entry now (its owner lives and has not handed it over). */
function isLive(record: JournalRecord): boolean {
  return record.ownerAlive && !(record.mine && record.entry.state === "settle");
}

/**
 * Per media ID in this process: a settling of the ID, or a run adding its entry, one at a time.
 * Runs take it through {@link withMediaLock}.
 */
export const withMediaLock = createKeyedLock();

/** What a pass did, in journal entries (its report counts media IDs), for telemetry. */
interface PassCounts {
  settled: number;
  deferred: number;
  retried: number;
  /** Entries no live process works on that this pass left: the `media_intake.journal.pending` gauge. */
  remaining: number;
}

/** The counts of the last pass over each journal in this process. */
const lastPass = new WeakMap<MediaJournal, PassCounts>();

/** One pass at a time per journal in this process: two would settle the same handed-over entry twice. */
const passes = new WeakMap<MediaJournal, Promise<unknown>>();

/**
 * One settling pass over the journal: takes over entries whose owner died and this process's
 * handed-over ones, and settles them per media ID, leaving every ID with live work alone.
 */
export async function settleJournal(journal: MediaJournal, client: AnnotationsClient, call: SettleCall, logger?: LifecycleLogger): Promise<SettleReport> {
  const previous = passes.get(journal) ?? Promise.resolve();
  const pass = previous.catch(() => {}).then(() => runPass(journal, client, call, logger));
  passes.set(journal, pass);
  try {
    return await pass;
  } finally {
    if (passes.get(journal) === pass) passes.delete(journal);
  }
}

async function runPass(journal: MediaJournal, client: AnnotationsClient, call: SettleCall, logger?: LifecycleLogger): Promise<SettleReport> {
  const report = {
    recordsCreated: [] as string[],
    filesRemoved: [] as string[],
    markedError: [] as string[],
    statusesWritten: [] as string[],
    alreadyConsistent: [] as string[],
    live: 0,
    failed: [] as Array<{ id: string; error: unknown }>,
  };
  const listed = await journal.list();
  const ids = new Set(listed.map((record) => record.entry.id));
  const seen: PassCounts = { settled: 0, deferred: 0, retried: 0, remaining: 0 };
  try {
    for (const id of ids) {
      // Under the ID's lock, read again: a run of this process starting now is either seen (and
      // its ID left alone) or starts after this settling (and its AIProcessing comes after).
      await withMediaLock(id, () => settleId(journal, client, call, logger, id, report, seen));
    }
  } finally {
    // What waited for this pass (entries no live process works on), less what it settled.
    seen.remaining = Math.max(0, listed.filter((record) => !isLive(record)).length - seen.settled);
    setJournalPending(journal.location, seen.remaining);
    recordSettle("settled", seen.settled);
    recordSettle("deferred", seen.deferred);
    recordSettle("retried", seen.retried);
    lastPass.set(journal, seen);
  }
  return report;
}

async function settleId(
  journal: MediaJournal,
  client: AnnotationsClient,
  call: SettleCall,
  logger: LifecycleLogger | undefined,
  id: string,
  report: { live: number; failed: Array<{ id: string; error: unknown }> } & Record<Exclude<Outcome, "deferred">, string[]>,
  seen: PassCounts,
): Promise<void> {
  const records = await journal.list(id);
  for (const kind of ["intake", "run"] as const) {
    call.signal?.throwIfAborted();
    const ofKind = records.filter((record) => record.entry.kind === kind);
    const live = ofKind.filter(isLive).length;
    report.live += live;
    if (ofKind.length === 0 || live > 0) continue;
    const handles = (await Promise.all(ofKind.map((record) => journal.claim(record)))).filter((handle): handle is JournalHandle => handle !== undefined);
    if (handles.length === 0) continue;
    try {
      const outcome = kind === "intake" ? await settleIntakes(journal, client, id, handles, call, logger) : await settleRuns(client, id, handles, call);
      if (outcome === "deferred") {
        report.live += handles.length;
        seen.deferred += handles.length;
        continue;
      }
      report[outcome].push(id);
      logger?.info?.({ id, kind, outcome }, "media journal entry settled");
      await Promise.all(handles.map((handle) => handle.remove()));
      seen.settled += handles.length;
    } catch (error) {
      if (call.signal?.aborted) throw call.signal.reason;
      seen.retried += handles.length;
      report.failed.push({ id, error });
      logger?.warn?.({ id, kind, error: (error as Error)?.message }, "media journal entry not settled yet");
    }
  }
}

/** Background settling of one journal in this process, with backoff while work remains. */
interface Settler {
  client: AnnotationsClient;
  call: SettleCall;
  logger: LifecycleLogger | undefined;
  timer: NodeJS.Timeout | undefined;
  delayMs: number;
  /** Set by `startRecovery`: its client and token serve, whoever hands work over. */
  pinned: boolean;
  /** A pass is under way. */
  running: boolean;
  /** Work was handed over during the pass: another pass follows at once. */
  again: boolean;
}

const settlers = new WeakMap<MediaJournal, Settler>();
const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 15_000;

/**
 * Hands the journal's pending work to this process's background settler: a pass soon, then
 * again with backoff (0.5 s doubling to 15 s) until nothing handed over is left. The timer does
 * not keep the process alive: what is left at exit stays journaled for the next start.
 */
export function settleInBackground(journal: MediaJournal, client: AnnotationsClient, logger?: LifecycleLogger): void {
  let settler = settlers.get(journal);
  if (!settler) settlers.set(journal, (settler = { client, call: {}, logger, timer: undefined, delayMs: 0, pinned: false, running: false, again: false }));
  // The newest client serves, unless the service's credentials were given for this journal.
  if (!settler.pinned) settler.client = client;
  settler.logger ??= logger;
  // A pass under way may have listed the journal before this hand-over: it runs again after.
  if (settler.running) settler.again = true;
  else if (settler.timer) {
    clearTimeout(settler.timer);
    schedule(journal, settler, 0);
  } else schedule(journal, settler, 0);
}

/** Uses this client and token for the background passes of `journal` (the service's own). */
export function useServiceCredentials(journal: MediaJournal, client: AnnotationsClient, token: string | undefined, logger?: LifecycleLogger): void {
  const settler = settlers.get(journal);
  const call = token ? { token } : {};
  if (settler) Object.assign(settler, { client, call, logger: logger ?? settler.logger, pinned: true });
  else settlers.set(journal, { client, call, logger, timer: undefined, delayMs: 0, pinned: true, running: false, again: false });
}

function schedule(journal: MediaJournal, settler: Settler, delayMs: number): void {
  settler.timer = setTimeout(() => {
    settler.timer = undefined;
    settler.running = true;
    settler.again = false;
    // Each background pass in a span of its own (a root: no caller waits on it, and it settles
    // what any number of uploads and runs handed over).
    void inSpan(
      SPAN.settle,
      async (span) => {
        const report = await settleJournal(journal, settler.client, settler.call, settler.logger);
        const counts = lastPass.get(journal);
        if (span && counts) {
          span.setAttributes({ [ATTR.settled]: counts.settled, [ATTR.deferred]: counts.deferred, [ATTR.retried]: counts.retried, [ATTR.remaining]: counts.remaining });
        }
        return report;
      },
      { root: true },
    )
      .then(
        async (report) => {
          const pending = (await journal.list().catch(() => [])).some((record) => record.mine && record.entry.state === "settle");
          return pending || report.failed.length > 0;
        },
        (error: unknown) => {
          settler.logger?.warn?.({ error: (error as Error)?.message }, "media journal pass failed");
          return true;
        },
      )
      .then((left) => {
        settler.running = false;
        if (settler.again) {
          schedule(journal, settler, 0);
          return;
        }
        if (!left) {
          settler.delayMs = 0;
          return;
        }
        settler.delayMs = Math.min(LONGEST_RETRY_MS, settler.delayMs === 0 ? FIRST_RETRY_MS : settler.delayMs * 2);
        schedule(journal, settler, settler.delayMs);
      });
  }, delayMs);
  settler.timer.unref();
}
