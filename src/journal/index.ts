// The journal: one contract (journal.ts) and an engine per file, as tus-node-server lays out its
// `kvstores/` and `lockers/`. The file engine (file/) is part of the core; the Redis engine
// (redis.ts) is its own entry point, `media-intake/journal/redis`, so the core needs no ioredis.
export { createFileJournal, type FileJournalOptions, fileJournalFor, JOURNAL_DIRECTORY_NAME } from "./file/index.ts";
export type {
  IntakeJournalEntry,
  JournalEntry,
  JournalEntryState,
  JournalHandle,
  JournalRecord,
  MediaJournal,
  RunJournalEntry,
} from "./journal.ts";
