import type { AnnotationsClient } from "../annotations/index.ts";
import { normalizeStorageDirectories, type StorageDirectories, sweepPartials } from "../storage/index.ts";
import { checkOptionsOf, MINIMUM, type OptionChecks } from "../utils/index.ts";
import { fileJournalFor, type MediaJournal } from "../journal/index.ts";
import { type LifecycleLogger, type SettleReport, settleJournal, useServiceCredentials } from "./settle.ts";

/** Options of {@link recoverInterrupted}. */
export interface RecoverInterruptedOptions {
  /** The annotations client; its own token (or `getToken`) is used unless `token` is given. */
  client: AnnotationsClient;
  /** The storage directories: their temp files are swept, and their file journal settled. */
  directories: StorageDirectories;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/journal/redis`). */
  journal?: MediaJournal;
  /** The service's own token for the recovery's calls (docs/contract.md "The service's own token"). */
  token?: string;
  /**
   * Temp files whose process cannot be judged from here (another container) are removed once
   * untouched for this long; those of dead processes on this host go at once, live ones never.
   * @default 3_600_000 (one hour)
   */
  partialsOlderThanMs?: number;
  /**
   * Sweep the temp files of dead uploads too (a listing of both storage directories).
   * @default true
   */
  sweepPartials?: boolean;
  /** Aborts the recovery between entries; entries not reached stay for the next one. */
  signal?: AbortSignal;
  /** Gets a line per settled entry (`info`) and per one left for later (`warn`). */
  logger?: LifecycleLogger;
}

/** What {@link recoverInterrupted} did. */
export interface RecoveryReport extends SettleReport {
  /** Temp files of dead uploads removed. */
  readonly partialsRemoved: string[];
}

const recoverOptionNames = ["client", "directories", "journal", "token", "partialsOlderThanMs", "sweepPartials", "signal", "logger"] as const;

function journalOf(options: { directories: StorageDirectories; journal?: MediaJournal | undefined }, check?: OptionChecks): MediaJournal {
  return options.journal ?? fileJournalFor(options.directories, {}, check);
}

/** Checks the options {@link recoverInterrupted} and {@link startRecovery} share, as `check`'s function. */
function checkRecoverOptions(options: Omit<RecoverInterruptedOptions, "signal">, check: OptionChecks): void {
  if (!(options?.client as AnnotationsClient | undefined)?.media) check.fail("client", "an annotations client", options?.client);
  check.boolean("sweepPartials", options.sweepPartials);
  // The directories serve the sweep and the file journal; with neither, none need be given.
  if (!options.journal || options.sweepPartials !== false) normalizeStorageDirectories(options.directories, check);
  if (options.partialsOlderThanMs !== undefined) check.number("partialsOlderThanMs", options.partialsOlderThanMs, { min: MINIMUM.ageMs, unit: "ms" });
}

/**
 * One settling pass: finishes what dead processes left and what live ones handed over, never
 * touching work a live process is doing (a dead owner on this host is recognised at once by its
 * pid and start time). Per media ID:
 * - an intake whose file landed without its record: the record is created (status New) for the
 *   uploader's user ID; a definite refusal removes the file (unless anything relies on it);
 * - a run cut off with its record in AIProcessing: Error; a run that ended but whose final
 *   status did not land: that status;
 * - temp files of dead uploads are removed.
 * The service's calls use `token` (else the client's own). What cannot be settled now (the
 * service down) stays for the next pass: call it again, or use {@link startRecovery}.
 *
 * @example
 * const report = await recoverInterrupted({ client, directories, token: serviceToken });
 */
export async function recoverInterrupted(options: RecoverInterruptedOptions): Promise<RecoveryReport> {
  const check = checkOptionsOf("recoverInterrupted");
  check.known(options, recoverOptionNames);
  checkRecoverOptions(options, check);
  const journal = journalOf(options, check);
  const call = { ...(options.token ? { token: options.token } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const settled = await settleJournal(journal, options.client, call, options.logger);
  // What the sweep cannot do now (a log it cannot read) waits for the next pass; settling went on.
  await journal.sweep().catch((error: unknown) => options.logger?.warn?.({ error: (error as Error)?.message }, "media journal sweep failed; retried next pass"));
  const partialsRemoved =
    options.sweepPartials === false ? [] : await sweepPartials(options.directories, { olderThanMs: options.partialsOlderThanMs ?? 3_600_000 });
  return Object.freeze({ ...settled, partialsRemoved });
}

/** Options of {@link startRecovery}: {@link recoverInterrupted}'s, and how often. */
export interface StartRecoveryOptions extends Omit<RecoverInterruptedOptions, "signal" | "sweepPartials"> {
  /** Time between two passes. @default 5_000 */
  intervalMs?: number;
  /**
   * Time between two sweeps of temp files (each lists both storage directories, which may hold
   * millions of files); the first pass always sweeps. @default 300_000
   */
  sweepIntervalMs?: number;
  /** Called with each pass's report (a throw inside it is logged and ignored). */
  onPass?: (report: RecoveryReport) => void;
}

/** The running recovery of {@link startRecovery}. */
export interface RecoveryHandle {
  /** Runs a pass now (or waits for the one running) and resolves to its report. */
  runNow(): Promise<RecoveryReport>;
  /** Stops the passes; resolves when the one running has ended. */
  stop(): Promise<void>;
}

/**
 * Keeps the journal settled while the service runs: a pass at once (the service need not wait
 * for it: start serving meanwhile, even while the annotations service is down), then one every
 * `intervalMs`, so what waits on the annotations service lands within seconds of its return. It
 * also makes this client and token the ones this process's background settling uses.
 *
 * @example
 * const recovery = startRecovery({ client, directories, token: serviceToken, logger });
 * process.once("SIGTERM", () => void recovery.stop());
 */
export function startRecovery(options: StartRecoveryOptions): RecoveryHandle {
  const check = checkOptionsOf("startRecovery");
  check.known(options, [...recoverOptionNames.filter((name) => name !== "signal" && name !== "sweepPartials"), "intervalMs", "sweepIntervalMs", "onPass"]);
  checkRecoverOptions(options, check);
  const { intervalMs = 5_000, sweepIntervalMs = 300_000, onPass, ...recoverOptions } = options;
  check.number("intervalMs", intervalMs, { min: MINIMUM.intervalMs, unit: "ms" });
  check.number("sweepIntervalMs", sweepIntervalMs, { min: MINIMUM.intervalMs, unit: "ms" });
  check.func("onPass", onPass);
  let lastSweep = Number.NEGATIVE_INFINITY;
  useServiceCredentials(journalOf(options, check), options.client, options.token, options.logger);
  const controller = new AbortController();
  let running: Promise<RecoveryReport> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const sweepDue = () => {
    if (Date.now() - lastSweep < sweepIntervalMs) return false;
    lastSweep = Date.now();
    return true;
  };
  const pass = (): Promise<RecoveryReport> =>
    (running ??= recoverInterrupted({ ...recoverOptions, signal: controller.signal, sweepPartials: sweepDue() })
      .then((report) => {
        try {
          onPass?.(report);
        } catch (error) {
          options.logger?.warn?.({ error: (error as Error)?.message }, "onPass threw; ignored");
        }
        return report;
      })
      .finally(() => {
        running = undefined;
        if (!controller.signal.aborted) {
          timer = setTimeout(() => void pass().catch(() => {}), intervalMs);
          timer.unref();
        }
      }));

  void pass().catch((error: unknown) => {
    if (!controller.signal.aborted) options.logger?.warn?.({ error: (error as Error)?.message }, "recovery pass failed");
  });
  return {
    runNow() {
      clearTimeout(timer);
      return pass();
    },
    async stop() {
      controller.abort(new Error("recovery stopped"));
      clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
}


