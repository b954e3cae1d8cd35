// The crash journal: one small JSON file per in-flight intake or processing run, written
// atomically and fsynced, in `<videosDir>/.media-intake-journal/`. Each file names the process
// that owns it and a lease that the owner renews; recovery takes over only expired leases.
import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { normalizeStorageDirectories, type StorageDirectories } from "../storage/index.ts";

/** The journal's folder inside `videosDir`. */
export const JOURNAL_DIRECTORY_NAME = ".media-intake-journal";
/** @default 30 s: the owner renews every third of it. */
export const DEFAULT_LEASE_MS = 30_000;

/** A claimed entry untouched for this long belongs to a recovery that died; it is taken again. */
const ABANDONED_CLAIM_MS = 5 * 60_000;

/** What one journal file records. */
export interface JournalEntry {
  /** `intake`: a stored file whose record may be missing; `processing`: a run that may be cut off. */
  readonly kind: "intake" | "processing";
  readonly id: string;
  /** Intake only: what the record needs. */
  readonly path?: string;
  readonly name?: string;
  readonly mediaType?: number;
  readonly userId?: string;
  /** The owning process: `host:pid:uuid`. */
  readonly owner: string;
  /** Epoch ms until which the owner's claim holds. */
  readonly leaseUntil: number;
  readonly startedAt: number;
}

export type NewJournalEntry = Omit<JournalEntry, "owner" | "leaseUntil" | "startedAt">;

/** This process's name in journal entries. */
export const processOwner = `${hostname()}:${process.pid}:${randomUUID()}`;

export function journalDirectory(directories: StorageDirectories): string {
  return join(normalizeStorageDirectories(directories).videosDir, JOURNAL_DIRECTORY_NAME);
}

export function checkLeaseMs(leaseMs: unknown): number {
  if (typeof leaseMs !== "number" || !Number.isFinite(leaseMs) || leaseMs < 100) {
    throw new TypeError(`Expected \`leaseMs\` to be a number of milliseconds, at least 100, got ${String(leaseMs)}.`);
  }
  return leaseMs;
}

/** Writes `data` to `path` so that a reader sees the old file or the new one, never a part. */
async function writeAtomically(directory: string, path: string, data: string): Promise<void> {
  const temp = `${path}.${randomUUID()}.tmp`;
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  const dir = await open(directory, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A live entry of this process; its lease is renewed until `remove()`. */
export interface JournalHandle {
  readonly entry: JournalEntry;
  remove(): Promise<void>;
}

interface Live {
  file: string;
  entry: JournalEntry;
}

/** The entries this process owns, per journal folder, renewed on one timer. */
const journals = new Map<string, { leaseMs: number; live: Set<Live>; timer: NodeJS.Timeout | undefined }>();

/** Records an in-flight item and keeps its lease alive until the handle is removed. */
export async function addJournalEntry(directories: StorageDirectories, entry: NewJournalEntry, leaseMs: number): Promise<JournalHandle> {
  const directory = journalDirectory(directories);
  await mkdir(directory, { recursive: true });
  const now = Date.now();
  const live: Live = {
    file: join(directory, `${entry.kind}-${entry.id}-${randomUUID()}.json`),
    entry: Object.freeze({ ...entry, owner: processOwner, leaseUntil: now + leaseMs, startedAt: now }),
  };
  await writeAtomically(directory, live.file, JSON.stringify(live.entry));
  let journal = journals.get(directory);
  if (!journal) journals.set(directory, (journal = { leaseMs, live: new Set(), timer: undefined }));
  journal.leaseMs = Math.min(journal.leaseMs, leaseMs);
  journal.live.add(live);
  if (!journal.timer) {
    const current = journal;
    current.timer = setInterval(() => void renew(directory, current), Math.max(50, Math.floor(current.leaseMs / 3)));
    current.timer.unref();
  }
  const owner = journal;
  return {
    entry: live.entry,
    async remove() {
      owner.live.delete(live);
      if (owner.live.size === 0 && owner.timer) {
        clearInterval(owner.timer);
        owner.timer = undefined;
      }
      // Gone already when a recovery took it over: nothing to do then.
      await rm(live.file, { force: true });
    },
  };
}

async function renew(directory: string, journal: { leaseMs: number; live: Set<Live> }): Promise<void> {
  for (const live of journal.live) {
    const renewed = Object.freeze({ ...live.entry, leaseUntil: Date.now() + journal.leaseMs });
    try {
      // Only while the file is still ours: a file a recovery took over is not brought back.
      await stat(live.file);
      await writeAtomically(directory, live.file, JSON.stringify(renewed));
      live.entry = renewed;
    } catch {
      // A missed renewal shortens the lease; the next tick tries again.
    }
  }
}

/** An entry found on disk, with the file that holds it. */
export interface StoredJournalEntry {
  readonly file: string;
  readonly entry: JournalEntry;
}

/** Every entry of the journal folder; unreadable files (a torn write cannot happen) are skipped. */
export async function readJournal(directories: StorageDirectories): Promise<StoredJournalEntry[]> {
  const directory = journalDirectory(directories);
  const names = await readdir(directory).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [] as string[];
    throw error;
  });
  const found: StoredJournalEntry[] = [];
  for (const name of names.filter((n) => n.endsWith(".json") || n.includes(".json.claimed-"))) {
    const file = join(directory, name);
    try {
      // A claimed file is being recovered; one left for long belongs to a recovery that died.
      if (!name.endsWith(".json") && Date.now() - (await stat(file)).mtimeMs < ABANDONED_CLAIM_MS) continue;
      found.push({ file, entry: JSON.parse(await readFile(file, "utf8")) as JournalEntry });
    } catch {
      // Removed meanwhile by its owner, or not ours.
    }
  }
  return found;
}

/**
 * Takes an expired entry over: the file is renamed to a name only this call knows, so two
 * recoveries never act on one entry. Resolves to the new file, or `undefined` when the entry is
 * live or another process got it first.
 */
export async function claimJournalEntry(stored: StoredJournalEntry, now = Date.now()): Promise<string | undefined> {
  if (stored.entry.leaseUntil > now) return undefined;
  const claimed = `${stored.file}.claimed-${randomUUID()}`;
  try {
    await rename(stored.file, claimed);
  } catch {
    return undefined;
  }
  // Renewed between our read and the rename: give it back to its owner.
  try {
    const current = JSON.parse(await readFile(claimed, "utf8")) as JournalEntry;
    if (current.leaseUntil > now) {
      await rename(claimed, stored.file);
      return undefined;
    }
  } catch {
    return undefined;
  }
  return claimed;
}

/** Puts a claimed entry back, expired, for a later recovery (the service was unreachable). */
export async function releaseJournalEntry(claimed: string, original: string): Promise<void> {
  await rename(claimed, original).catch(() => {});
}
