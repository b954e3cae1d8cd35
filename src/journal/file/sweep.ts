// The sweep of a journal folder: what dead owners left besides their entries. A dead owner's log
// with no entry left goes (one with entries is claimed by settling instead), and so do its temp
// files, and its heartbeat once it owns no entry (a claim needs the heartbeat to judge it).
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { JournalUnavailableError } from "../../errors/index.ts";
import { processOwnerKey } from "../../utils/index.ts";
import { ENTRY, TEMP } from "./entry-files.ts";
import { listNames } from "./io.ts";
import { HEARTBEAT, type Liveness } from "./liveness.ts";
import { LOG, readLog } from "./log-format.ts";

/** Removes what dead owners left in `folder` besides entries; returns how many files went. */
export async function sweepFolder(folder: string, liveness: Liveness): Promise<number> {
  const all = await listNames(folder);
  const owners = new Set<string>();
  const now = Date.now();
  const heartbeatOwners = new Set(all.flatMap((name) => HEARTBEAT.exec(name)?.[1] ?? []));
  const allOwners = new Set([...heartbeatOwners, ...all.flatMap((name) => LOG.exec(name)?.[1] ?? TEMP.exec(name)?.[1] ?? [])]);
  const beats = await liveness.beatsOf(all, allOwners);
  let removed = 0;
  let unreadable: unknown;
  // Dead owners' logs with no entry left go; those with entries are claimed by settling.
  // One that cannot be read now (EMFILE, EIO) stays, with its owner's heartbeat, for the next pass.
  for (const name of all) {
    const owner = LOG.exec(name)?.[1];
    if (owner && owner !== processOwnerKey && !liveness.alive(owner, beats, now)) {
      const entries = await readLog(folder, name).catch((error: unknown) => void (unreadable ??= error));
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
    if (liveness.alive(owner, beats, now)) continue;
    await rm(join(folder, name), { force: true });
    removed += 1;
  }
  if (unreadable !== undefined) throw new JournalUnavailableError(`Sweeping (a dead owner's log kept unread, ${removed} files removed)`, folder, unreadable);
  return removed;
}
