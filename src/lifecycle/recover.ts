import { rm, stat } from "node:fs/promises";
import { type AnnotationsClient, MediaStatus } from "../annotations/index.ts";
import { MediaNotFoundError, AnnotationsHttpError, AnnotationsAuthError } from "../errors/index.ts";
import { computeMediaId } from "../media-id/index.ts";
import type { MediaType } from "../media-type/index.ts";
import { type StorageDirectories, sweepPartials } from "../storage/index.ts";
import { claimJournalEntry, type JournalEntry, readJournal, releaseJournalEntry } from "./journal.ts";

/** Options of {@link recoverInterrupted}. */
export interface RecoverInterruptedOptions {
  /** The annotations client; its own token (or `getToken`) is used unless `token` is given. */
  client: AnnotationsClient;
  /** The storage directories the journal lives in. */
  directories: StorageDirectories;
  /** A service token for the recovery's calls. */
  token?: string;
  /**
   * Temp files of uploads untouched for this long are removed too (see `sweepPartials`).
   * @default 3_600_000 (one hour)
   */
  partialsOlderThanMs?: number;
  /** Aborts the recovery between entries; entries not reached stay for the next one. */
  signal?: AbortSignal;
}

/** What {@link recoverInterrupted} did. */
export interface RecoveryReport {
  /** Records created for files whose intake was cut off before the record. */
  readonly recordsCreated: string[];
  /** Orphan files removed: their record could not be created (the service refused it). */
  readonly filesRemoved: string[];
  /** Media whose processing was cut off, now in Error. */
  readonly markedError: string[];
  /** Entries that needed nothing (the record was there, or the run had ended). */
  readonly alreadyConsistent: string[];
  /** Entries still leased by a live process: left alone. */
  readonly live: number;
  /** Entries that could not be settled now (the service unreachable): left for the next run. */
  readonly failed: Array<{ readonly id: string; readonly error: unknown }>;
  /** Temp files of cut-off uploads removed. */
  readonly partialsRemoved: string[];
}

/**
 * Settles what a crash left behind. Run it at start-up (and, with several replicas sharing the
 * directories, now and then): it takes over journal entries whose owner's lease expired, never
 * those of a live process.
 * - An intake cut off after the file landed: the missing record is created (status New) when the
 *   file is complete; a file whose record the service refuses is removed.
 * - A processing run cut off: a record still in AIProcessing is set to Error.
 * - Temp files of cut-off uploads are swept.
 *
 * @example
 * const report = await recoverInterrupted({ client, directories });
 * logger.info(report, "recovered");
 */
export async function recoverInterrupted(options: RecoverInterruptedOptions): Promise<RecoveryReport> {
  const { client, directories, signal } = options;
  if (!client?.media) throw new TypeError("Expected `client` to be an annotations client.");
  const call = { ...(options.token ? { token: options.token } : {}), ...(signal ? { signal } : {}) };
  const report = {
    recordsCreated: [] as string[],
    filesRemoved: [] as string[],
    markedError: [] as string[],
    alreadyConsistent: [] as string[],
    live: 0,
    failed: [] as Array<{ id: string; error: unknown }>,
    partialsRemoved: [] as string[],
  };
  for (const stored of await readJournal(directories)) {
    signal?.throwIfAborted();
    const claimed = await claimJournalEntry(stored);
    if (!claimed) {
      report.live += 1;
      continue;
    }
    try {
      const outcome = stored.entry.kind === "intake" ? await settleIntake(stored.entry, client, call) : await settleProcessing(stored.entry, client, call);
      report[outcome].push(stored.entry.id);
      await rm(claimed, { force: true });
    } catch (error) {
      report.failed.push({ id: stored.entry.id, error });
      await releaseJournalEntry(claimed, stored.file);
    }
  }
  report.partialsRemoved.push(...(await sweepPartials(directories, { olderThanMs: options.partialsOlderThanMs ?? 3_600_000 })));
  return report;
}

type Call = { token?: string; signal?: AbortSignal };

async function settleIntake(entry: JournalEntry, client: AnnotationsClient, call: Call) {
  if (await exists(client, entry.id, call)) return "alreadyConsistent" as const;
  const path = entry.path ?? "";
  const complete = await stat(path).then(
    async (stats) => stats.isFile() && (await computeMediaId(path)) === entry.id,
    () => false,
  );
  // No file (or another file) at the path: the intake never finished placing it.
  if (!complete) return "alreadyConsistent" as const;
  try {
    const { created } = await client.media.createOrGet(
      { id: entry.id, name: entry.name ?? "", path, mediaType: entry.mediaType as MediaType, userId: entry.userId ?? "" },
      call,
    );
    return created ? ("recordsCreated" as const) : ("alreadyConsistent" as const);
  } catch (error) {
    // The service refused this record for good (not a passing or an auth failure): the file
    // would stay an orphan for ever, so it goes.
    const refused = error instanceof AnnotationsHttpError && error.status >= 400 && error.status < 500 && !(error instanceof AnnotationsAuthError) && error.status !== 408 && error.status !== 429;
    if (!refused) throw error;
    await rm(path, { force: true });
    return "filesRemoved" as const;
  }
}

async function settleProcessing(entry: JournalEntry, client: AnnotationsClient, call: Call) {
  const record = await client.media.get(entry.id, call).catch((error: unknown) => {
    if (error instanceof MediaNotFoundError) return undefined;
    throw error;
  });
  if (record?.mediaStatus !== MediaStatus.AIProcessing) return "alreadyConsistent" as const;
  await client.media.updateStatus(entry.id, MediaStatus.Error, call);
  return "markedError" as const;
}

async function exists(client: AnnotationsClient, id: string, call: Call): Promise<boolean> {
  try {
    await client.media.get(id, call);
    return true;
  } catch (error) {
    if (error instanceof MediaNotFoundError) return false;
    throw error;
  }
}
