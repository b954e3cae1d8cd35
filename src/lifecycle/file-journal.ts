// The journal on files, for one host: one small JSON file per entry, named after its media ID
// and its owner, in `<videosDir>/.media-intake-journal/`. Entries are never renewed, so a removed
// entry can never be written back; a claim is a rename to the claimer's name, which exactly one
// claimer wins; the owner's liveness comes from its pid and start time (or, for a process in
// another pid namespace, from a heartbeat file it touches).
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { normalizeStorageDirectories, type StorageDirectories } from "../storage/index.ts";
import { syncDirectory } from "../utils/fs-errors.ts";
import { rejectUnknownOptions } from "../utils/options.ts";
import { isOwnerAlive, OWNER_KEY_PATTERN, processOwnerKey } from "../utils/process-identity.ts";
import type { JournalEntry, JournalHandle, JournalRecord, MediaJournal } from "./journal.ts";

/** The journal's folder inside `videosDir`. */
export const JOURNAL_DIRECTORY_NAME = ".media-intake-journal";

const ENTRY = new RegExp(`^(V?[0-9a-f]{16})\\.(intake|run)\\.([0-9a-f]{12})\\.(${OWNER_KEY_PATTERN})\\.json$`);
const TEMP = new RegExp(`^\\.tmp\\.[0-9a-f]{12}\\.(${OWNER_KEY_PATTERN})$`);
const HEARTBEAT = new RegExp(`^(${OWNER_KEY_PATTERN})\\.alive$`);

/** Options of {@link createFileJournal}. */
export interface FileJournalOptions {
  /**
   * How often this process touches its heartbeat file. Only owners in another pid namespace
   * (another container on the same volume) are judged by it: dead after three missed beats.
   * Processes in the same namespace are judged by pid and start time, at once.
   * @default 10_000
   */
  heartbeatMs?: number;
}

function checkHeartbeat(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 100) {
    throw new TypeError(`Expected \`heartbeatMs\` to be a number of milliseconds, at least 100, got ${String(value)}.`);
  }
  return value;
}

const journals = new Map<string, MediaJournal>();

/** This process's heartbeat files, removed when it exits (one `exit` listener for them all). */
const liveHeartbeats = new Set<string>();
function removeAtExit(file: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const heartbeat of liveHeartbeats) {
        try {
          unlinkSync(heartbeat);
        } catch {
          // Gone already.
        }
      }
    });
  }
  liveHeartbeats.add(file);
}
let exitHookInstalled = false;

/**
 * The file journal of the given storage directories, one instance per folder in this process
 * (so every intake and run of the process shares it, and its background settler).
 */
export function fileJournalFor(directories: StorageDirectories): MediaJournal {
  const folder = join(normalizeStorageDirectories(directories).videosDir, JOURNAL_DIRECTORY_NAME);
  let journal = journals.get(folder);
  if (!journal) journals.set(folder, (journal = createFileJournal(folder)));
  return journal;
}

/**
 * A {@link MediaJournal} on files in `folder`, for the processes of one host (any number of
 * them, cluster mode and containers sharing the volume included). Use {@link fileJournalFor}
 * to get the one `intakeMedia` and `trackMediaProcessing` use for some directories.
 */
export function createFileJournal(folder: string, options: FileJournalOptions = {}): MediaJournal {
  rejectUnknownOptions(options, ["heartbeatMs"], "createFileJournal");
  const heartbeatMs = checkHeartbeat(options.heartbeatMs ?? 10_000);
  const heartbeatFile = join(folder, `${processOwnerKey}.alive`);
  let ready: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  /** The folder exists and this process's heartbeat beats (started with the first entry). */
  const prepare = () =>
    (ready ??= (async () => {
      await mkdir(folder, { recursive: true });
      await writeFile(heartbeatFile, "");
      removeAtExit(heartbeatFile);
      timer = setInterval(() => {
        const now = new Date();
        void utimes(heartbeatFile, now, now).catch(() => writeFile(heartbeatFile, "").catch(() => {}));
      }, heartbeatMs);
      timer.unref();
    })().catch((error: unknown) => {
      ready = undefined;
      throw error;
    }));

  /**
   * The folder's fsync, shared: concurrent writes wait for one sync that started after their
   * rename (a group commit), instead of one open, fsync and close each.
   */
  let syncing: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const syncFolder = (): Promise<void> => {
    if (!syncing) {
      syncing = syncDirectory(folder).finally(() => (syncing = undefined));
      return syncing;
    }
    // The sync in flight may have started before this rename: the next one covers it.
    queued ??= syncing.catch(() => {}).then(() => {
      queued = undefined;
      return syncFolder();
    });
    return queued;
  };

  /** Writes so that a reader sees the old file or the new one, never a part; survives a power cut. */
  async function writeAtomically(file: string, entry: JournalEntry): Promise<void> {
    const temp = join(folder, `.tmp.${randomBytes(6).toString("hex")}.${processOwnerKey}`);
    try {
      const handle = await open(temp, "wx");
      try {
        await handle.writeFile(JSON.stringify(entry));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await syncFolder();
  }

  function handleFor(file: string, entry: JournalEntry): JournalHandle {
    let current = entry;
    let removed = false;
    // One operation at a time per entry: an update still renaming its temp file must not land
    // after the removal and bring the entry back.
    let last: Promise<unknown> = Promise.resolve();
    const inTurn = <T>(operation: () => Promise<T>): Promise<T> => {
      const next = last.then(operation, operation);
      last = next.catch(() => {});
      return next;
    };
    return {
      key: file,
      get entry() {
        return current;
      },
      update(changes) {
        return inTurn(async () => {
          if (removed) throw new Error(`Updating journal entry ${file}: it was removed.`);
          const next = Object.freeze({ ...current, ...changes }) as JournalEntry;
          await writeAtomically(file, next);
          current = next;
        });
      },
      remove() {
        return inTurn(async () => {
          removed = true;
          await rm(file, { force: true });
        });
      },
    };
  }

  /** Judges an owner: by pid and start time on this kernel, else by its heartbeat. */
  async function alive(owner: string, heartbeats: Map<string, number>, now: number): Promise<boolean> {
    const known = isOwnerAlive(owner);
    if (known !== undefined) return known;
    const beat = heartbeats.get(owner);
    return beat !== undefined && now - beat < 3 * heartbeatMs;
  }

  async function names(): Promise<string[]> {
    return readdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
  }

  async function heartbeatsOf(all: string[], owners: Set<string>): Promise<Map<string, number>> {
    const beats = new Map<string, number>();
    for (const name of all) {
      const owner = HEARTBEAT.exec(name)?.[1];
      if (!owner || !owners.has(owner) || isOwnerAlive(owner) !== undefined) continue;
      const stats = await stat(join(folder, name)).catch(() => undefined);
      if (stats) beats.set(owner, stats.mtimeMs);
    }
    return beats;
  }

  const journal: MediaJournal = {
    location: folder,
    async add(entry) {
      await prepare();
      const file = join(folder, `${entry.id}.${entry.kind}.${randomBytes(6).toString("hex")}.${processOwnerKey}.json`);
      const frozen = Object.freeze({ ...entry });
      await writeAtomically(file, frozen);
      return handleFor(file, frozen);
    },
    async list(id) {
      const all = await names();
      const matches = all.flatMap((name) => {
        const match = ENTRY.exec(name);
        return match && (id === undefined || match[1] === id) ? [{ name, owner: match[4] as string }] : [];
      });
      const now = Date.now();
      const beats = await heartbeatsOf(all, new Set(matches.map((m) => m.owner)));
      const records: JournalRecord[] = [];
      for (const { name, owner } of matches) {
        const file = join(folder, name);
        try {
          const entry = JSON.parse(await readFile(file, "utf8")) as JournalEntry;
          records.push(
            Object.freeze({ key: file, owner, ownerAlive: await alive(owner, beats, now), mine: owner === processOwnerKey, entry: Object.freeze(entry) }),
          );
        } catch {
          // Removed or claimed between the listing and the read: it is someone else's now.
        }
      }
      return records;
    },
    async claim(record) {
      if (record.mine) return handleFor(record.key, record.entry);
      if (record.ownerAlive) return undefined;
      const match = ENTRY.exec(record.key.slice(folder.length + 1));
      if (!match) return undefined;
      const claimed = join(folder, `${match[1]}.${match[2]}.${match[3]}.${processOwnerKey}.json`);
      await prepare();
      try {
        await rename(record.key, claimed);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
      // Read back what was claimed: the file, not the listing, is the truth.
      const entry = JSON.parse(await readFile(claimed, "utf8")) as JournalEntry;
      const handle = handleFor(claimed, Object.freeze(entry));
      if (entry.state !== "settle") await handle.update({ state: "settle" });
      return handle;
    },
    async sweep() {
      const all = await names();
      const owners = new Set<string>();
      for (const name of all) {
        const owner = ENTRY.exec(name)?.[4];
        if (owner) owners.add(owner);
      }
      const now = Date.now();
      const heartbeatOwners = new Set(all.flatMap((name) => HEARTBEAT.exec(name)?.[1] ?? []));
      const beats = await heartbeatsOf(all, heartbeatOwners);
      let removed = 0;
      for (const name of all) {
        const temp = TEMP.exec(name)?.[1];
        const beat = HEARTBEAT.exec(name)?.[1];
        const owner = temp ?? beat;
        if (!owner || owner === processOwnerKey) continue;
        // A heartbeat goes only once its owner is dead and owns no entry (a claim needs it to judge).
        if (beat && owners.has(beat)) continue;
        if (await alive(owner, beats, now)) continue;
        await rm(join(folder, name), { force: true });
        removed += 1;
      }
      return removed;
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      ready = undefined;
      liveHeartbeats.delete(heartbeatFile);
      await rm(heartbeatFile, { force: true });
    },
  };
  return journal;
}
