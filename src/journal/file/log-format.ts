// The log's format on disk: a file per process, `<12 hex>.<owner>.log`, one JSON line per change
// (an entry put under its key, or its key removed).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { OWNER_KEY_PATTERN } from "../../utils/index.ts";
import type { JournalEntry } from "../journal.ts";
import { ifGone } from "./io.ts";

/** A log's file name; the owner's key is its first group. */
export const LOG = new RegExp(`^[0-9a-f]{12}\\.(${OWNER_KEY_PATTERN})\\.log$`);

/** A line of a log: an entry put under its key, or (without `e`) the key removed. */
export interface LogLine {
  k: string;
  e?: JournalEntry;
}

/** Each line starts with a newline, which also ends a line a crash cut short: parsing skips it. */
export const lineOf = (line: LogLine) => `\n${JSON.stringify(line)}`;

/** The entries a log holds, by key; cut or unreadable lines are skipped. */
export function replay(text: string): Map<string, JournalEntry> {
  const entries = new Map<string, JournalEntry>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    if (typeof parsed?.k !== "string") continue;
    if (parsed.e && typeof parsed.e === "object") entries.set(parsed.k, Object.freeze(parsed.e));
    else entries.delete(parsed.k);
  }
  return entries;
}

/** Another process's log (or one of another copy of this module), read: its entries by key (none once it is gone). */
export async function readLog(folder: string, name: string): Promise<Map<string, JournalEntry>> {
  return replay((await readFile(join(folder, name), "utf8").catch(ifGone)) ?? "");
}
