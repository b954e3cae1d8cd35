// The journal on files, for one host, in `<videosDir>/.media-intake-journal/`. Its parts, each in
// its own file: the logs each process appends its entries to (log.ts, their format in
// log-format.ts), the entry files 0.1.0 wrote, still listed, claimed and settled
// (entry-files.ts), whether an owner still runs, by pid and start time or by a heartbeat file
// (liveness.ts), the sweep of what dead owners left (sweep.ts), and the file calls under them all
// (io.ts). This file puts them together as one `MediaJournal`. Only ENOENT means a file is gone:
// any other failure to read one keeps it for the next pass.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { JournalUnavailableError } from "../../errors/index.ts";
import { normalizeStorageDirectories, type StorageDirectories } from "../../storage/index.ts";
import { checkOptionsOf, type Durability, durabilityOf, isLocalFileSystem, MINIMUM, onceSucceeded, processOwnerKey, strongerDurability } from "../../utils/index.ts";
import type { JournalEntry, JournalRecord, MediaJournal } from "../journal.ts";
import { ENTRY, entryFilesIn } from "./entry-files.ts";
import { inThreadPool, listNames, onEventLoop } from "./io.ts";
import { livenessIn } from "./liveness.ts";
import { logsIn, stateOf } from "./log.ts";
import { LOG, readLog } from "./log-format.ts";
import { sweepFolder } from "./sweep.ts";

/** The journal's folder inside `videosDir`. */
export const JOURNAL_DIRECTORY_NAME = ".media-intake-journal";

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
  /**
   * What an entry survives once `add` or `update` resolves: `"process"` a crash of the process
   * (the line is in the page cache), `"power"` a power cut too (the log fdatasynced, concurrent
   * changes sharing one sync). The journals of one folder in a process share its logs: the
   * strongest durability any of them asked for applies to all. See {@link Durability}.
   * @default "process"
   */
  durability?: Durability;
}

const journals = new Map<string, MediaJournal>();

/**
 * The file journal of the given storage directories, one instance per folder in this process
 * (so every intake and run of the process shares it, and its background settler). With
 * `durability: "power"` its changes are synced from now on (the strongest setting asked for
 * applies). A bad directory is named as an option of `check`'s function (internal).
 */
export function fileJournalFor(directories: StorageDirectories, options: { durability?: Durability } = {}, check?: { fail(name: string, expected: string, value: unknown): never }): MediaJournal {
  const own = checkOptionsOf("fileJournalFor");
  own.known(options, ["durability"]);
  const durability = durabilityOf({ durability: options.durability }, own);
  const folder = join(normalizeStorageDirectories(directories, check).videosDir, JOURNAL_DIRECTORY_NAME);
  let journal = journals.get(folder);
  if (!journal) journals.set(folder, (journal = createFileJournal(folder, { durability })));
  else raiseDurability(folder, durability);
  return journal;
}

/** The folder's journals sync from now on when `durability` asks for more than they do. */
function raiseDurability(folder: string, durability: Durability): void {
  const state = stateOf(folder);
  state.durability = strongerDurability(state.durability, durability);
}

/**
 * A {@link MediaJournal} on files in `folder`, for the processes of one host (any number of
 * them, cluster mode and containers sharing the volume included). Use {@link fileJournalFor}
 * to get the one `intakeMedia` and `trackMediaProcessing` use for some directories.
 */
export function createFileJournal(folder: string, options: FileJournalOptions = {}): MediaJournal {
  const check = checkOptionsOf("createFileJournal");
  check.known(options, ["heartbeatMs", "durability"]);
  const heartbeatMs = check.number("heartbeatMs", options.heartbeatMs ?? 10_000, { min: MINIMUM.heartbeatMs, unit: "ms" });
  const durability = durabilityOf({ durability: options.durability }, check);
  const state = stateOf(folder);
  raiseDurability(folder, durability);
  const liveness = livenessIn(folder, heartbeatMs);

  /** The folder exists and this process's heartbeat beats (started with the first entry; tried again after a failure). */
  async function startHeartbeat(): Promise<void> {
    await mkdir(folder, { recursive: true });
    state.calls = isLocalFileSystem(folder) ? onEventLoop : inThreadPool;
    await liveness.start();
  }
  let prepare = onceSucceeded(startHeartbeat);
  const logs = logsIn(folder, () => prepare(), liveness.rewrite);
  const entryFiles = entryFilesIn(folder, state.syncFolder, () => prepare());

  /** Every entry, or those of one media ID: this process's from memory, the others' read. */
  async function listRecords(id: string | undefined): Promise<JournalRecord[]> {
    const all = await listNames(folder);
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
    const beats = await liveness.beatsOf(all, new Set(others.map((other) => other.owner)));
    for (const { name, owner, legacy } of others) {
      const base = { owner, ownerAlive: liveness.alive(owner, beats, now), mine: owner === processOwnerKey };
      const path = join(folder, name);
      if (!legacy) {
        for (const [k, entry] of await readLog(folder, name)) {
          if (id === undefined || entry.id === id) records.push(Object.freeze({ key: `${path}#${k}`, ...base, entry }));
        }
        continue;
      }
      const entry = await entryFiles.read(path);
      if (entry !== undefined) records.push(Object.freeze({ key: path, ...base, entry }));
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
        return await logs.add(frozen).catch((error: unknown) => (error as { logRemoved?: boolean })?.logRemoved ? logs.add(frozen) : Promise.reject(error));
      } catch (error) {
        throw new JournalUnavailableError(`Adding ${frozen.kind === "intake" ? "an" : "a"} ${frozen.kind} entry of media ${frozen.id}`, folder, error);
      }
    },
    list: (id) => listRecords(id).catch((error: unknown) => Promise.reject(new JournalUnavailableError(`Listing the entries${id === undefined ? "" : ` of media ${id}`}`, folder, error))),
    async claim(record) {
      const legacy = record.key.endsWith(".json");
      if (record.mine) return legacy ? entryFiles.handle(record.key, record.entry) : logs.own(record.key);
      if (record.ownerAlive) return undefined;
      return legacy ? entryFiles.claim(record) : logs.claim(record);
    },
    sweep: () => sweepFolder(folder, liveness),
    async close() {
      prepare = onceSucceeded(startHeartbeat);
      await liveness.stop();
    },
  };
  return journal;
}
