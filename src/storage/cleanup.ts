// Cleanup: the temp files dead uploads left (swept), and stored files being removed (retired,
// then restored or unlinked).
import { randomBytes } from "node:crypto";
import { link, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { checkOptionsOf, isOwnerAlive, MINIMUM, OWNER_KEY_PATTERN, processOwnerKey } from "../utils/index.ts";
import { writeError } from "./io.ts";
import { normalizeStorageDirectories, type StorageDirectories } from "./plan.ts";

/**
 * Temp files are `.<16 hex>.<owner>.partial` in the type's directory, so {@link sweepPartials}
 * knows them and whose they are (`.<16 hex>.partial`, without an owner, from older releases).
 */
const PARTIAL_PATTERN = new RegExp(`^\\.[0-9a-f]{16}(?:\\.(${OWNER_KEY_PATTERN}))?\\.partial$`);
/** A stored file being removed: `.<its name>.<12 hex>.retired`, beside it until the removal is decided. */
const RETIRED_PATTERN = /^\.(.+)\.[0-9a-f]{12}\.retired$/;

/** A new temp file's path in `directory`, named for this process as {@link sweepPartials} expects. */
export function partialPathIn(directory: string): string {
  return join(directory, `.${randomBytes(8).toString("hex")}.${processOwnerKey}.partial`);
}

/** Options of {@link sweepPartials}. */
export interface SweepPartialsOptions {
  /**
   * Temp files whose owner this process cannot judge (a process in another container, or a
   * release before 0.2) are removed once not written to for this long. Temp files of a dead
   * process on this host go at once; those of a live one never, however slow the upload.
   * @default 3_600_000 (one hour)
   */
  olderThanMs?: number;
}

/**
 * Removes the temp files (`.<16 hex>.<owner>.partial`) that dead uploads left in the storage
 * directories, and returns their paths: at once when their process is known to be dead (same
 * host: its pid and start time), after `olderThanMs` without a write when it cannot be judged,
 * never while it runs. Files a removal left half-done (`.retired`) are put back, for the
 * journal to decide again. Run it at start-up; {@link recoverInterrupted} does.
 *
 * @example
 * const removed = await sweepPartials(directories, { olderThanMs: 15 * 60_000 });
 */
export async function sweepPartials(directories: StorageDirectories, options: SweepPartialsOptions = {}): Promise<string[]> {
  const check = checkOptionsOf("sweepPartials");
  check.known(options, ["olderThanMs"]);
  const olderThanMs = check.number("olderThanMs", options.olderThanMs ?? 3_600_000, { min: MINIMUM.ageMs, unit: "ms" });
  const dirs = normalizeStorageDirectories(directories, check);
  const cutoff = Date.now() - olderThanMs;
  const removed: string[] = [];
  for (const directory of new Set([dirs.videosDir, dirs.imagesDir])) {
    const names = await readdir(directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
    for (const name of names) {
      const path = join(directory, name);
      const retired = RETIRED_PATTERN.exec(name);
      if (retired) {
        await restoreRetiredFile(path, join(directory, retired[1] as string));
        continue;
      }
      const partial = PARTIAL_PATTERN.exec(name);
      if (!partial) continue;
      const alive = partial[1] === undefined ? undefined : isOwnerAlive(partial[1]);
      if (alive === true) continue;
      if (alive === undefined) {
        const stats = await stat(path).catch(() => undefined);
        if (!stats?.isFile() || stats.mtimeMs > cutoff) continue;
      }
      await rm(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}

/**
 * Moves a stored file out of the way (to `.<name>.<12 hex>.retired` beside it) as the first step
 * of removing it: from then on its name is free (a new upload of the content places its own
 * file), and the caller decides between {@link restoreRetiredFile} and unlinking. `undefined`
 * when there was no file.
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
 */
export async function retireStoredFile(path: string): Promise<string | undefined> {
  const retired = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.retired`);
  try {
    await rename(path, retired);
    return retired;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw writeError(path, error);
  }
}

/**
 * Puts a retired file back at `path`, unless a file landed there meanwhile (then that one stays).
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
 */
export async function restoreRetiredFile(retired: string, path: string): Promise<void> {
  await link(retired, path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw writeError(path, error);
  });
  await unlink(retired);
}
