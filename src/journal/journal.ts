// The journal: what is in flight, durably, so that nothing is lost when an outcome is not known
// or a process dies. One small interface; one factory per engine (files on one host in file/,
// Redis across hosts in redis.ts, `media-intake/journal/redis`), and one conformance suite
// (test/helpers/journal-conformance.ts) run against each.
import type { MediaStatus } from "../annotations/index.ts";
import type { MediaType } from "../media-type/index.ts";

/**
 * `active`: its owner is working on it (an upload between its file and its record, a detection
 * run). `settle`: the owner handed it over: whoever settles the journal (the owner's background
 * settler, or any process once the owner is dead) finishes it.
 */
export type JournalEntryState = "active" | "settle";

/** A stored file whose record may be missing: settled by creating the record, or removing the file on a definite refusal. */
export interface IntakeJournalEntry {
  readonly kind: "intake";
  readonly id: string;
  readonly state: JournalEntryState;
  /** The file the record will name. */
  readonly path: string;
  /** The record's Name, MediaType and UserId. */
  readonly name: string;
  readonly mediaType: MediaType;
  readonly userId: string;
  /**
   * The service refused this record for good: settling never creates it, and removes the file
   * once nothing relies on it.
   */
  readonly refused?: boolean;
  /** Epoch ms when it was added; updates keep it. */
  readonly at: number;
}

/**
 * A detection run. While `active`, the record may be in AIProcessing. Settled by writing
 * `status` when it is set (the outcome the run ended with), else by moving a record still in
 * AIProcessing to Error (the run was cut off).
 */
export interface RunJournalEntry {
  readonly kind: "run";
  readonly id: string;
  readonly state: JournalEntryState;
  /** The final status the run ended with: AIProcessed or Error. */
  readonly status?: MediaStatus;
  /**
   * A queue runs it again when its owner dies (BullMQ's stalled-job checker): settling a run cut
   * off leaves its record to the next try, and writes only a final `status` the run ended with.
   */
  readonly requeuedOnCrash?: boolean;
  /** Epoch ms when the run started (updates and claims keep it): the newest run decides. */
  readonly at: number;
}

/** What a journal records. */
export type JournalEntry = IntakeJournalEntry | RunJournalEntry;

/** An entry as {@link MediaJournal.list} finds it. */
export interface JournalRecord {
  /** The engine's name for it: stable while the entry lives, changed by a claim. */
  readonly key: string;
  /** The owner's process key. */
  readonly owner: string;
  /** Whether the owner runs (as the engine judges it: pid and start time, or a heartbeat). */
  readonly ownerAlive: boolean;
  /** `true` when this process owns it. */
  readonly mine: boolean;
  readonly entry: JournalEntry;
}

/** An entry this process owns. */
export interface JournalHandle {
  readonly key: string;
  readonly entry: JournalEntry;
  /** Changes the entry's state or a run's final status (atomically: a reader sees the old entry or the new one). */
  update(changes: { readonly state?: JournalEntryState; readonly status?: MediaStatus; readonly refused?: boolean }): Promise<void>;
  /** Removes the entry; removing twice is harmless. */
  remove(): Promise<void>;
}

/**
 * Durable record of in-flight work, shared by every process that uses the same storage (one
 * host for the file engine, any number of hosts for the Redis one).
 */
export interface MediaJournal {
  /** Where it lives, for logs. */
  readonly location: string;
  /** Records an entry owned by this process. */
  add(entry: JournalEntry): Promise<JournalHandle>;
  /** Every entry, or those of one media ID. */
  list(id?: string): Promise<JournalRecord[]>;
  /**
   * Takes an entry over for this process: one whose owner is dead (exactly one claimer wins;
   * the entry comes back in state `settle`) or one of this process's own. `undefined` when
   * another claimer won or the owner lives.
   */
  claim(record: JournalRecord): Promise<JournalHandle | undefined>;
  /** Removes what dead owners left besides entries (temp files, heartbeats); returns how many. */
  sweep(): Promise<number>;
  /** Stops this process's heartbeat. Entries stay for whoever settles them. */
  close(): Promise<void>;
}
