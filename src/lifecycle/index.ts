export { createFileJournal, type FileJournalOptions, fileJournalFor, JOURNAL_DIRECTORY_NAME } from "./file-journal.ts";
export type {
  IntakeJournalEntry,
  JournalEntry,
  JournalEntryState,
  JournalHandle,
  JournalRecord,
  MediaJournal,
  RunJournalEntry,
} from "./journal.ts";
export {
  type RecoverInterruptedOptions,
  type RecoveryHandle,
  type RecoveryReport,
  recoverInterrupted,
  startRecovery,
  type StartRecoveryOptions,
} from "./recover.ts";
export { type LifecycleLogger, type SettleReport } from "./settle.ts";
export {
  type MediaStatusChange,
  type ProcessingContext,
  type TrackCallOptions,
  type TrackedMedia,
  type TrackedProcessing,
  trackMediaProcessing,
  type TrackMediaProcessingOptions,
} from "./track.ts";
