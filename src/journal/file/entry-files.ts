// Entries as 0.1.0 wrote them: one JSON file each, `<id>.<kind>.<12 hex>.<owner>.json`, renamed
// to claim, rewritten whole (through a temp file) to update. Still listed, claimed and settled.
import { closeSync, fsync, openSync, renameSync } from "node:fs";
import { readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { OWNER_KEY_PATTERN, processOwnerKey } from "../../utils/index.ts";
import type { JournalEntry, JournalHandle, JournalRecord } from "../journal.ts";
import { callback, ifGone, oneAtATime, removeIfThere, uniqueName, writeAllSync } from "./io.ts";

/** An entry file's name: media ID, kind, unique part, owner. */
export const ENTRY = new RegExp(`^(V?[0-9a-f]{16})\\.(intake|run)\\.([0-9a-f]{12})\\.(${OWNER_KEY_PATTERN})\\.json$`);
/** A temp file an entry file is rewritten through; the owner's key is its first group. */
export const TEMP = new RegExp(`^\\.tmp\\.[0-9a-f]{12}\\.(${OWNER_KEY_PATTERN})$`);

/** The 0.1.0 entry files of a journal folder. */
export interface EntryFiles {
  /** The handle of an entry file this process owns. */
  handle(file: string, entry: JournalEntry): JournalHandle;
  /** Renames a dead owner's entry file to this process (exactly one claimer wins) and hands it back in state `settle`. */
  claim(record: JournalRecord): Promise<JournalHandle | undefined>;
  /** The entry a file holds; `undefined` once it is gone (removed or claimed), or torn by a crash of 0.1.0 mid-write. */
  read(file: string): Promise<JournalEntry | undefined>;
}

/**
 * The entry files in `folder`: `syncFolder` makes a rename in it durable; `prepare` readies the
 * folder and this process's heartbeat before a claim.
 */
export function entryFilesIn(folder: string, syncFolder: () => Promise<void>, prepare: () => Promise<void>): EntryFiles {
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
    await syncFolder();
  }

  function handle(file: string, entry: JournalEntry): JournalHandle {
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

  return {
    handle,
    async claim(record) {
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
      const won = handle(claimed, Object.freeze(entry));
      if (entry.state !== "settle") await won.update({ state: "settle" });
      return won;
    },
    async read(file) {
      // Removed or claimed between the listing and the read: it is someone else's now.
      const text = await readFile(file, "utf8").catch(ifGone);
      if (text === undefined) return undefined;
      try {
        return Object.freeze(JSON.parse(text) as JournalEntry);
      } catch {
        // Torn by a crash of 0.1.0 mid-write: nothing to settle.
        return undefined;
      }
    },
  };
}
