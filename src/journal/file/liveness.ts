// Whether an entry's owner still runs. On this kernel and in this pid namespace, its pid and
// start time say so at once. A process in another pid namespace (another container on the same
// volume) is judged by a heartbeat file it touches, `<owner>.alive`, which records its period.
import { readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { isOwnerAlive, MINIMUM, OWNER_KEY_PATTERN, processOwnerKey } from "../../utils/index.ts";
import { ifGone } from "./io.ts";

/** A heartbeat file's name; the owner's key is its first group. */
export const HEARTBEAT = new RegExp(`^(${OWNER_KEY_PATTERN})\\.alive$`);

/** An owner's last beat and the period it beats at (`undefined`: a heartbeat of 0.2, which records none). */
export interface Beat {
  at: number;
  periodMs: number | undefined;
}

/** The period a heartbeat file records (`{"heartbeatMs":…}`); `undefined` for an older, empty one. */
function periodOf(text: string): number | undefined {
  try {
    const periodMs = (JSON.parse(text) as { heartbeatMs?: unknown }).heartbeatMs;
    return typeof periodMs === "number" && Number.isFinite(periodMs) && periodMs >= MINIMUM.heartbeatMs ? periodMs : undefined;
  } catch {
    return undefined;
  }
}

/** This process's heartbeat files, removed when it exits (one `exit` listener for them all). */
const liveHeartbeats = new Set<string>();
let exitHookInstalled = false;
function removeAtExit(file: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const heartbeat of liveHeartbeats) {
        try {
          unlinkSync(heartbeat);
        } catch {
          // Gone already.
        }
      }
    });
  }
  liveHeartbeats.add(file);
}

/** This process's heartbeat in a journal folder, and the judge of the other owners there. */
export interface Liveness {
  /** Writes the heartbeat file and beats every `heartbeatMs` (the folder exists). */
  start(): Promise<void>;
  /** Writes the heartbeat file again (its folder was made again under the running process). */
  rewrite(): Promise<void>;
  /** Stops beating and removes the heartbeat file. */
  stop(): Promise<void>;
  /** The heartbeats of owners that cannot be judged by pid; a heartbeat that cannot be read throws (never "dead"). */
  beatsOf(names: string[], owners: Set<string>): Promise<Map<string, Beat>>;
  /** Judges an owner: by pid and start time on this kernel, else by its heartbeat, at its own period. */
  alive(owner: string, beats: Map<string, Beat>, now: number): boolean;
}

export function livenessIn(folder: string, heartbeatMs: number): Liveness {
  const heartbeatFile = join(folder, `${processOwnerKey}.alive`);
  const heartbeat = JSON.stringify({ heartbeatMs });
  let timer: NodeJS.Timeout | undefined;
  return {
    async start() {
      await writeFile(heartbeatFile, heartbeat);
      removeAtExit(heartbeatFile);
      clearInterval(timer);
      timer = setInterval(() => {
        const now = new Date();
        void utimes(heartbeatFile, now, now).catch(() => writeFile(heartbeatFile, heartbeat).catch(() => {}));
      }, heartbeatMs);
      timer.unref();
    },
    rewrite: () => writeFile(heartbeatFile, heartbeat),
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      liveHeartbeats.delete(heartbeatFile);
      await rm(heartbeatFile, { force: true });
    },
    async beatsOf(names, owners) {
      const beats = new Map<string, Beat>();
      for (const name of names) {
        const owner = HEARTBEAT.exec(name)?.[1];
        if (!owner || !owners.has(owner) || isOwnerAlive(owner) !== undefined) continue;
        const file = join(folder, name);
        const stats = await stat(file).catch(ifGone);
        const text = stats && (await readFile(file, "utf8").catch(ifGone));
        if (stats) beats.set(owner, { at: stats.mtimeMs, periodMs: periodOf(text ?? "") });
      }
      return beats;
    },
    alive(owner, beats, now) {
      const known = isOwnerAlive(owner);
      if (known !== undefined) return known;
      const beat = beats.get(owner);
      return beat !== undefined && now - beat.at < 3 * (beat.periodMs ?? heartbeatMs);
    },
  };
}
