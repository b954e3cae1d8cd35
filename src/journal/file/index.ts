// The file engine of the journal, for one host.
export { createFileJournal, type FileJournalOptions, fileJournalFor, JOURNAL_DIRECTORY_NAME } from "./file-journal.ts";
