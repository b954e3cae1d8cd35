// The log engine of the file journal. Each process appends its entries to a log of its own, one
// JSON line per change (see log-format.ts). With durability "power", concurrent changes share one
// fdatasync (a group commit); with "process", a line written is in the page cache, which outlives
// the process, and nothing is synced. An upload's entries cost a few appended lines, not a file
// written, synced and renamed each. A log goes when its last entry does. Entries are never renewed: a removed entry's key is
// never written again. A dead owner's log is claimed by renaming it to the claimer's name, which
// exactly one claimer wins; the claimer appends its entries back in state `settle`.
import { fdatasync } from "node:fs";
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { JournalUnavailableError } from "../../errors/index.ts";
import { type Durability, onceSucceeded, processOwnerKey } from "../../utils/index.ts";
import type { JournalEntry, JournalHandle, JournalRecord } from "../journal.ts";
import { callback, groupSync, inThreadPool, type LogCalls, oneAtATime, onEventLoop, syncPath, uniqueName } from "./io.ts";
import { lineOf, replay } from "./log-format.ts";

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

/** What the journals of one folder share in this process: its logs and its entries' handles. */
export interface FolderState {
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
  /** What a change survives once written: "power" syncs it (the strongest any journal of the folder asked for). */
  durability: Durability;
}
const folderStates = new Map<string, FolderState>();
export function stateOf(folder: string): FolderState {
  let state = folderStates.get(folder);
  if (!state) {
    state = { active: undefined, opening: undefined, calls: inThreadPool, logs: new Map(), handles: new Map(), claims: new Map(), syncFolder: groupSync(() => syncPath(folder)), durability: "process" };
    folderStates.set(folder, state);
  }
  return state;
}

/** @internal For tests: how many dead owners' logs this process holds claimed handles of, in `folder`. */
export function claimsHeldIn(folder: string): number {
  return folderStates.get(folder)?.claims.size ?? 0;
}

/** The logs of a journal folder, as this process appends to and claims them. */
export interface Logs {
  /** Records an entry in the active log (or a new one), as durably as the folder's journals ask. */
  add(entry: JournalEntry): Promise<JournalHandle>;
  /** This process's handle of one of its own entries, from memory. */
  own(key: string): JournalHandle | undefined;
  /** Takes over an entry of a dead owner's log: the whole log is claimed once, its entries handed out one each. */
  claim(record: JournalRecord): Promise<JournalHandle | undefined>;
}

/**
 * The logs in `folder`: `prepare` readies the folder and this process's heartbeat before a
 * claim; `remade` writes that heartbeat again once the folder was made again under the running
 * process.
 */
export function logsIn(folder: string, prepare: () => Promise<void>, remade: () => Promise<void>): Logs {
  const state = stateOf(folder);

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
          await stillNamed(log, calls);
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
    if (state.durability === "power") log.named().catch(() => {});
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
      await remade();
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
   * Waits until every line written to `log` so far lasts as the folder's durability asks. With
   * "power", on disk: its name durable, and a sync after the lines with no sync failed since
   * `failures` was read (before they were written), since a line written before a failed sync
   * returned may be lost though a later sync succeeds. With "process", the lines are in the page
   * cache already: only that the log is still named (not removed under this process).
   */
  async function durable(log: Log, failures: number): Promise<void> {
    if (state.durability === "process") {
      return stillNamed(log, state.calls).catch((error: unknown) => {
        retire(log);
        throw error;
      });
    }
    await Promise.all([log.named(), log.sync()]);
    if (log.syncFailures !== failures) throw log.syncFailure;
  }

  /** A log removed under this process (its folder cleaned away) holds nothing that lasts. */
  async function stillNamed(log: Log, calls: LogCalls): Promise<void> {
    if (state.logs.get(log.path) === log && (await calls.links(log.fd)) === 0) {
      throw Object.assign(new Error(`ENOENT: ${log.path} was removed while open`), { code: "ENOENT", logRemoved: true });
    }
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

  return {
    add: addToLog,
    own: (key) => state.handles.get(key),
    async claim(record) {
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
  };
}
