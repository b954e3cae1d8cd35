// The journal on files, for one host, in `<videosDir>/.media-intake-journal/`. Each process
// appends its entries to a log of its own (`<12 hex>.<owner>.log`, one JSON line per change:
// an entry put under its key, or its key removed), and concurrent changes share one fdatasync
// (a group commit): an upload's entries cost a few appended lines, not a file written, synced
// and renamed each. A log goes when its last entry does. Entries are never renewed: a removed
// entry's key is never written again. A dead owner's log is claimed by renaming it to the
// claimer's name, which exactly one claimer wins; the claimer appends its entries back in state
// `settle` and settles them. The owner's liveness comes from its pid and start time (or, for a
// process in another pid namespace, from a heartbeat file it touches, which records its period).
// Entries written by 0.1.0 (one JSON file each) are still listed, claimed and settled. Only
// ENOENT means a file is gone: any other failure to read one keeps it for the next pass.
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { closeSync, fdatasync, fsync, openSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { JournalUnavailableError } from "../errors/index.ts";
import { callback, groupSync, ifGone, inThreadPool, lineOf, type LogCalls, onceSucceeded, oneAtATime, onEventLoop, removeIfThere, replay, syncPath, uniqueName, writeAllSync } from "./file-journal-io.ts";
import { normalizeStorageDirectories, type StorageDirectories } from "../storage/index.ts";
import { isLocalFileSystem } from "../utils/local-fs.ts";
import { rejectUnknownOptions } from "../utils/options.ts";
import { isOwnerAlive, OWNER_KEY_PATTERN, processOwnerKey } from "../utils/process-identity.ts";
import type { JournalEntry, JournalHandle, JournalRecord, MediaJournal } from "./journal.ts";

/** The journal's folder inside `videosDir`. */
export const JOURNAL_DIRECTORY_NAME = ".media-intake-journal";

const LOG = new RegExp(`^[0-9a-f]{12}\\.(${OWNER_KEY_PATTERN})\\.log$`);
/** 0.1.0's entry files and their temp files. */
const ENTRY = new RegExp(`^(V?[0-9a-f]{16})\\.(intake|run)\\.([0-9a-f]{12})\\.(${OWNER_KEY_PATTERN})\\.json$`);
const TEMP = new RegExp(`^\\.tmp\\.[0-9a-f]{12}\\.(${OWNER_KEY_PATTERN})$`);
const HEARTBEAT = new RegExp(`^(${OWNER_KEY_PATTERN})\\.alive$`);

/** A log past this size takes no new entries; it goes once its last entry does. */
const ROTATE_BYTES = 1 << 20;

/** A log file this process appends to. */
interface Log {
  readonly path: string;
  readonly fd: number;
  /** How many entries it holds. */
  live: number;
  /** It takes no new entries (claimed from a dead owner, too large, or a write or sync failed). */
  retired: boolean;
  size: number;
  /** Its name is durable (the folder synced after it was created or renamed); retried after a failure. */
  readonly named: () => Promise<void>;
  readonly sync: ReturnType<typeof groupSync>;
  /** How many of its syncs failed, and the last failure. */
  syncFailures: number;
  syncFailure: unknown;
  /** The last write in the thread pool's order (writes land in order). */
  tail: Promise<void>;
  /** The dead owner's log it was claimed from. */
  readonly claimedFrom?: string;
}

/** Options of {@link createFileJournal}. */
export interface FileJournalOptions {
  /**
   * How often this process touches its heartbeat file, which records this period. Only owners in
   * another pid namespace (another container on the same volume) are judged by it: dead after
   * three of their own periods without a beat (the judge's period for a heartbeat of 0.2, which
   * records none). Processes in the same namespace are judged by pid and start time, at once.
   * @default 10_000
   */
  heartbeatMs?: number;
}

/** An owner's last beat and the period it beats at (`undefined`: a heartbeat of 0.2, which records none). */
interface Beat {
  at: number;
  periodMs: number | undefined;
}

/** The period a heartbeat file records (`{"heartbeatMs":…}`); `undefined` for an older, empty one. */
function periodOf(text: string): number | undefined {
  try {
    const periodMs = (JSON.parse(text) as { heartbeatMs?: unknown }).heartbeatMs;
    return typeof periodMs === "number" && Number.isFinite(periodMs) && periodMs >= 100 ? periodMs : undefined;
  } catch {
    return undefined;
  }
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

/** What the journals of one folder share in this process: its logs and its entries' handles. */
interface FolderState {
  /** The log new entries go to, or the one being created. */
  active: Log | undefined;
  opening: Promise<Log> | undefined;
  /** Its file calls, told once the folder exists. */
  calls: LogCalls;
  /** Every log this process holds open, by path. */
  readonly logs: Map<string, Log>;
  /** This process's entries, by record key (`<log path>#<key>`). */
  readonly handles: Map<string, JournalHandle>;
  /**
   * Dead owners' logs being claimed or claimed, by their old path: the handles won and not yet
   * handed out (released once all are, or the claimed log goes).
   */
  readonly claims: Map<string, Promise<Map<string, JournalHandle> | undefined>>;
  readonly syncFolder: () => Promise<void>;
}
const folderStates = new Map<string, FolderState>();
function stateOf(folder: string): FolderState {
  let state = folderStates.get(folder);
  if (!state) {
    state = { active: undefined, opening: undefined, calls: inThreadPool, logs: new Map(), handles: new Map(), claims: new Map(), syncFolder: groupSync(() => syncPath(folder)) };
    folderStates.set(folder, state);
  }
  return state;
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
  const heartbeat = JSON.stringify({ heartbeatMs });
  const state = stateOf(folder);
  let timer: NodeJS.Timeout | undefined;

  /** The folder exists and this process's heartbeat beats (started with the first entry; tried again after a failure). */
  async function startHeartbeat(): Promise<void> {
    await mkdir(folder, { recursive: true });
    state.calls = isLocalFileSystem(folder) ? onEventLoop : inThreadPool;
    await writeFile(heartbeatFile, heartbeat);
    removeAtExit(heartbeatFile);
    clearInterval(timer);
    timer = setInterval(() => {
      const now = new Date();
      void utimes(heartbeatFile, now, now).catch(() => writeFile(heartbeatFile, heartbeat).catch(() => {}));
    }, heartbeatMs);
    timer.unref();
  }
  let prepare = onceSucceeded(startHeartbeat);

  /** A log of this process, open for appending: created (`wx`) or claimed (renamed to its name) from `claimedFrom`. */
  async function openLog(path: string, flags: "wx" | "a", claimedFrom?: string): Promise<Log> {
    const fd = await state.calls.open(path, flags);
    const { calls } = state;
    const log: Log = {
      path,
      fd,
      live: 0,
      retired: claimedFrom !== undefined,
      size: 0,
      named: onceSucceeded(state.syncFolder),
      sync: groupSync(async () => {
        try {
          await callback((done) => fdatasync(fd, done));
          // A log removed under this process (its folder cleaned away) holds nothing durable.
          if (state.logs.get(path) === log && (await calls.links(fd)) === 0) {
            throw Object.assign(new Error(`ENOENT: ${path} was removed while open`), { code: "ENOENT", logRemoved: true });
          }
        } catch (error) {
          // After a failed sync, a later one proves nothing of what was written before it:
          // what waited on it fails, and new entries go to a new log.
          log.syncFailures += 1;
          log.syncFailure = error;
          retire(log);
          throw error;
        }
      }),
      syncFailures: 0,
      syncFailure: undefined,
      tail: Promise.resolve(),
      ...(claimedFrom === undefined ? {} : { claimedFrom }),
    };
    // Started at once, beside the first write; a failure is tried again by the next change.
    log.named().catch(() => {});
    state.logs.set(path, log);
    return log;
  }

  /** A new log of this process; its folder made again when it was removed under the running process. */
  async function newLog(): Promise<Log> {
    const path = join(folder, `${uniqueName()}.${processOwnerKey}.log`);
    try {
      return await openLog(path, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      // A volume cleaned or remounted: the folder made again, as the store makes its own, and
      // this process's heartbeat with it (a judge in another container must see it alive).
      await mkdir(folder, { recursive: true });
      await writeFile(heartbeatFile, heartbeat);
      return openLog(path, "wx");
    }
  }

  /** The log for a new entry: the current one, or a new one when it is full or there is none. */
  function activeLog(): Log | Promise<Log> {
    if (state.active && !state.active.retired) return state.active;
    state.opening ??= newLog()
      .then((log) => (state.active = log))
      .finally(() => (state.opening = undefined));
    return state.opening;
  }

  /**
   * Waits until every line written to `log` so far is on disk: its name durable, and a sync
   * after the lines with no sync failed since `failures` was read (before they were written),
   * since a line written before a failed sync returned may be lost though a later sync succeeds.
   */
  async function durable(log: Log, failures: number): Promise<void> {
    await Promise.all([log.named(), log.sync()]);
    if (log.syncFailures !== failures) throw log.syncFailure;
  }

  function retire(log: Log): void {
    log.retired = true;
    if (state.active === log) state.active = undefined;
  }

  /**
   * Appends lines, in order. On a local file system with system calls of their own, not
   * through the thread pool: an append is a few microseconds, less than a round trip to the
   * pool; only the syncs, which wait on the disk, go there. A log whose write fails (or that
   * grew past ROTATE_BYTES) takes no new entries.
   */
  function append(log: Log, text: string): Promise<void> {
    const bytes = Buffer.from(text);
    log.size += bytes.length;
    if (log.size > ROTATE_BYTES) retire(log);
    const written = state.calls === onEventLoop ? state.calls.write(log.fd, bytes) : log.tail.then(() => state.calls.write(log.fd, bytes));
    log.tail = written.catch(() => retire(log));
    return written;
  }

  /** The log's last entry is gone: so is the log (its file closed once its writes and syncs are over). */
  async function drop(log: Log): Promise<void> {
    retire(log);
    state.logs.delete(log.path);
    if (log.claimedFrom !== undefined) state.claims.delete(log.claimedFrom);
    const { calls } = state;
    try {
      await calls.unlink(log.path);
    } finally {
      void Promise.all([log.tail, log.sync.idle()]).then(() => calls.close(log.fd).catch(() => {}));
    }
  }

  /** The handle of entry `k` of `log`. */
  function logHandle(log: Log, k: string, entry: JournalEntry): JournalHandle {
    const key = `${log.path}#${k}`;
    let current = entry;
    let removed = false;
    const inTurn = oneAtATime();
    const handle: JournalHandle = {
      key,
      get entry() {
        return current;
      },
      update(changes) {
        return inTurn(async () => {
          if (removed) throw new Error(`Updating journal entry ${key}: it was removed.`);
          const next = Object.freeze({ ...current, ...changes }) as JournalEntry;
          // A line holds the whole entry: one synced after a failed sync of its log is durable.
          const failures = log.syncFailures;
          try {
            await append(log, lineOf({ k, e: next }));
            await durable(log, failures);
          } catch (error) {
            throw new JournalUnavailableError(`Updating entry ${k} of media ${current.id}`, folder, error);
          }
          current = next;
        });
      },
      remove() {
        return inTurn(async () => {
          if (removed) return;
          removed = true;
          state.handles.delete(key);
          log.live -= 1;
          // Written even when the log goes with it: should the removal of the file fail, its
          // text still says the entry is gone.
          await append(log, lineOf({ k }));
          if (log.live === 0) await drop(log);
        });
      },
    };
    state.handles.set(key, handle);
    log.live += 1;
    return handle;
  }

  /**
   * Claims a dead owner's log: renamed to this process's name (exactly one claimer wins), its
   * entries appended back in state `settle`. Resolves to their handles by key, or `undefined`
   * when another claimer won.
   */
  async function claimLog(path: string): Promise<Map<string, JournalHandle> | undefined> {
    await prepare();
    const claimed = join(folder, `${uniqueName()}.${processOwnerKey}.log`);
    try {
      await rename(path, claimed);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    // Read back what was claimed: the file, not the listing, is the truth.
    const entries = replay(await readFile(claimed, "utf8"));
    const log = await openLog(claimed, "a", path);
    const won = new Map<string, JournalHandle>();
    let lines = "";
    for (const [k, entry] of entries) {
      const settled = entry.state === "settle" ? entry : (Object.freeze({ ...entry, state: "settle" }) as JournalEntry);
      if (settled !== entry) lines += lineOf({ k, e: settled });
      won.set(k, logHandle(log, k, settled));
    }
    const failures = log.syncFailures;
    if (lines) await append(log, lines);
    await durable(log, failures);
    if (log.live === 0) await drop(log);
    return won;
  }

  /** Judges an owner: by pid and start time on this kernel, else by its heartbeat, at its own period. */
  function alive(owner: string, heartbeats: Map<string, Beat>, now: number): boolean {
    const known = isOwnerAlive(owner);
    if (known !== undefined) return known;
    const beat = heartbeats.get(owner);
    return beat !== undefined && now - beat.at < 3 * (beat.periodMs ?? heartbeatMs);
  }

  async function names(): Promise<string[]> {
    return readdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
  }

  /** The heartbeats of owners that cannot be judged by pid; a heartbeat that cannot be read throws (never "dead"). */
  async function heartbeatsOf(all: string[], owners: Set<string>): Promise<Map<string, Beat>> {
    const beats = new Map<string, Beat>();
    for (const name of all) {
      const owner = HEARTBEAT.exec(name)?.[1];
      if (!owner || !owners.has(owner) || isOwnerAlive(owner) !== undefined) continue;
      const file = join(folder, name);
      const stats = await stat(file).catch(ifGone);
      const text = stats && (await readFile(file, "utf8").catch(ifGone));
      if (stats) beats.set(owner, { at: stats.mtimeMs, periodMs: periodOf(text ?? "") });
    }
    return beats;
  }

  /** Another process's log (or one of another copy of this module), read: its entries by key (none once it is gone). */
  async function readLog(name: string): Promise<Map<string, JournalEntry>> {
    return replay((await readFile(join(folder, name), "utf8").catch(ifGone)) ?? "");
  }

  // -- Entries of 0.1.0: one JSON file each, renamed to claim, rewritten whole to update.

  /** Writes so that a reader sees the old file or the new one, never a part; survives a power cut. */
  async function writeAtomically(file: string, entry: JournalEntry): Promise<void> {
    const temp = join(folder, `.tmp.${uniqueName()}.${processOwnerKey}`);
    try {
      const fd = openSync(temp, "wx");
      try {
        writeAllSync(fd, Buffer.from(JSON.stringify(entry)));
        await callback((done) => fsync(fd, done));
      } finally {
        closeSync(fd);
      }
      renameSync(temp, file);
    } catch (error) {
      removeIfThere(temp);
      throw error;
    }
    await state.syncFolder();
  }

  function fileHandle(file: string, entry: JournalEntry): JournalHandle {
    let current = entry;
    let removed = false;
    const inTurn = oneAtATime();
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
          removeIfThere(file);
        });
      },
    };
  }

  async function claimFile(record: JournalRecord): Promise<JournalHandle | undefined> {
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
    const entry = JSON.parse(await readFile(claimed, "utf8")) as JournalEntry;
    const handle = fileHandle(claimed, Object.freeze(entry));
    if (entry.state !== "settle") await handle.update({ state: "settle" });
    return handle;
  }

  /** Adds an entry to the active log (or a new one). */
  async function addToLog(frozen: JournalEntry): Promise<JournalHandle> {
    // Taken at once when there is one (nothing may drop it between here and the count
    // below); a new one that a failed write retired meanwhile is passed over.
    let log: Log;
    do {
      const current = activeLog();
      log = current instanceof Promise ? await current : current;
    } while (log.retired);
    const k = uniqueName();
    const handle = logHandle(log, k, frozen);
    const failures = log.syncFailures;
    try {
      await append(log, lineOf({ k, e: frozen }));
    } catch (error) {
      state.handles.delete(handle.key);
      log.live -= 1;
      if (log.live === 0) await drop(log).catch(() => {});
      throw error;
    }
    try {
      await durable(log, failures);
    } catch (error) {
      // Not known to be durable: not the caller's. Removed, if the log still takes lines.
      await handle.remove().catch(() => {});
      throw error;
    }
    return handle;
  }

  /** Every entry, or those of one media ID: this process's from memory, the others' read. */
  async function listRecords(id: string | undefined): Promise<JournalRecord[]> {
    const all = await names();
    const records: JournalRecord[] = [];
    // This process's own entries from memory: they are what its logs say.
    for (const handle of state.handles.values()) {
      if (id !== undefined && handle.entry.id !== id) continue;
      records.push(Object.freeze({ key: handle.key, owner: processOwnerKey, ownerAlive: true, mine: true, entry: handle.entry }));
    }
    const others = all.flatMap((name) => {
      const log = LOG.exec(name);
      if (log) return state.logs.has(join(folder, name)) ? [] : [{ name, owner: log[1] as string, legacy: false }];
      const file = ENTRY.exec(name);
      return file && (id === undefined || file[1] === id) ? [{ name, owner: file[4] as string, legacy: true }] : [];
    });
    const now = Date.now();
    const beats = await heartbeatsOf(all, new Set(others.map((other) => other.owner)));
    for (const { name, owner, legacy } of others) {
      const base = { owner, ownerAlive: alive(owner, beats, now), mine: owner === processOwnerKey };
      const path = join(folder, name);
      if (!legacy) {
        for (const [k, entry] of await readLog(name)) {
          if (id === undefined || entry.id === id) records.push(Object.freeze({ key: `${path}#${k}`, ...base, entry }));
        }
        continue;
      }
      // Removed or claimed between the listing and the read: it is someone else's now.
      const text = await readFile(path, "utf8").catch(ifGone);
      if (text === undefined) continue;
      try {
        records.push(Object.freeze({ key: path, ...base, entry: Object.freeze(JSON.parse(text) as JournalEntry) }));
      } catch {
        // Torn by a crash of 0.1.0 mid-write: nothing to settle.
      }
    }
    return records;
  }

  const journal: MediaJournal = {
    location: folder,
    async add(entry) {
      const frozen = Object.freeze({ ...entry }) as JournalEntry;
      try {
        await prepare();
        // Once more on a new log (in a folder made again) when the log was removed under us.
        return await addToLog(frozen).catch((error: unknown) => (error as { logRemoved?: boolean })?.logRemoved ? addToLog(frozen) : Promise.reject(error));
      } catch (error) {
        throw new JournalUnavailableError(`Adding a ${frozen.kind} entry of media ${frozen.id}`, folder, error);
      }
    },
    list: (id) => listRecords(id).catch((error: unknown) => Promise.reject(new JournalUnavailableError(`Listing the entries${id === undefined ? "" : ` of media ${id}`}`, folder, error))),
    async claim(record) {
      const legacy = record.key.endsWith(".json");
      if (record.mine) return legacy ? fileHandle(record.key, record.entry) : state.handles.get(record.key);
      if (record.ownerAlive) return undefined;
      if (legacy) return claimFile(record);
      const cut = record.key.lastIndexOf("#");
      const path = record.key.slice(0, cut);
      let claiming = state.claims.get(path);
      if (!claiming) {
        claiming = claimLog(path);
        state.claims.set(path, claiming);
        // A claim that failed or was lost leaves nothing to hand out.
        void claiming.then(
          (won) => won === undefined && state.claims.get(path) === claiming && state.claims.delete(path),
          () => state.claims.get(path) === claiming && state.claims.delete(path),
        );
      }
      const won = await claiming;
      const k = record.key.slice(cut + 1);
      const handle = won?.get(k);
      // One settled meanwhile (by this process's settler, as its own) is no one's to hand out.
      if (!won || !handle || !state.handles.has(handle.key)) return undefined;
      // Each entry to one claimer: the rest of the log's are this process's, for its settler.
      won.delete(k);
      if (won.size === 0 && state.claims.get(path) === claiming) state.claims.delete(path);
      return handle;
    },
    async sweep() {
      const all = await names();
      const owners = new Set<string>();
      const now = Date.now();
      const heartbeatOwners = new Set(all.flatMap((name) => HEARTBEAT.exec(name)?.[1] ?? []));
      const allOwners = new Set([...heartbeatOwners, ...all.flatMap((name) => LOG.exec(name)?.[1] ?? TEMP.exec(name)?.[1] ?? [])]);
      const beats = await heartbeatsOf(all, allOwners);
      let removed = 0;
      let unreadable: unknown;
      // Dead owners' logs with no entry left go; those with entries are claimed by settling.
      // One that cannot be read now (EMFILE, EIO) stays, with its owner's heartbeat, for the next pass.
      for (const name of all) {
        const owner = LOG.exec(name)?.[1];
        if (owner && owner !== processOwnerKey && !alive(owner, beats, now)) {
          const entries = await readLog(name).catch((error: unknown) => void (unreadable ??= error));
          if (entries?.size === 0) {
            await rm(join(folder, name), { force: true });
            removed += 1;
            continue;
          }
        }
        const holder = owner ?? ENTRY.exec(name)?.[4];
        if (holder) owners.add(holder);
      }
      for (const name of all) {
        const temp = TEMP.exec(name)?.[1];
        const beat = HEARTBEAT.exec(name)?.[1];
        const owner = temp ?? beat;
        if (!owner || owner === processOwnerKey) continue;
        // A heartbeat goes only once its owner is dead and owns no entry (a claim needs it to judge).
        if (beat && owners.has(beat)) continue;
        if (alive(owner, beats, now)) continue;
        await rm(join(folder, name), { force: true });
        removed += 1;
      }
      if (unreadable !== undefined) throw new JournalUnavailableError(`Sweeping (a dead owner's log kept unread, ${removed} files removed)`, folder, unreadable);
      return removed;
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      prepare = onceSucceeded(startHeartbeat);
      liveHeartbeats.delete(heartbeatFile);
      await rm(heartbeatFile, { force: true });
    },
  };
  return journal;
}

/** @internal For tests: how many dead owners' logs this process holds claimed handles of, in `folder`. */
export function claimsHeldIn(folder: string): number {
  return folderStates.get(folder)?.claims.size ?? 0;
}
