// Placement: a complete temp file put at its path without ever replacing a file (a hard link,
// or a guard directory where there are none), the same content found under a sibling name kept.
import { linkSync, unlinkSync } from "node:fs";
import { link, mkdir, open, rename, rmdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { MediaIdCollisionError, MediaReadError } from "../errors/index.ts";
import { formatFamilies, type MediaTypeOptions, normalizeMediaTypeOptions } from "../media-type/index.ts";
import { createKeyedLock, describeFsError, isLocalFileSystem, syncDirectory } from "../utils/index.ts";
import type { ContentVerification } from "./content-check.ts";
import { isFile, readAt, WRITE_BATCH_BYTES, writeError } from "./io.ts";
import { planNamedPath, type StorageDirectories, type StorageNameInfo, type StorageNaming } from "./plan.ts";

/** Placements of one ID in this process, one after another (so two names of one content never both land). */
export const withIdLock = createKeyedLock();

/** The sibling extensions of an extension (and its family under the content check), per extension table. */
const siblingExtensions = new WeakMap<ReadonlyMap<string, unknown>, Map<string, string[]>>();

/** Where a store's file goes: its checked directories, what a custom `naming` is told, and `naming`. */
export interface PlacementPlan {
  readonly directories: Readonly<StorageDirectories>;
  readonly info: StorageNameInfo;
  readonly naming: StorageNaming | undefined;
}

/**
 * Where the same content may already be stored under another extension of its type (`.mov`
 * after `.mp4`, `.jpeg` after `.jpg`): the path each extension would get, this upload's first.
 */
export async function siblingPaths(plan: PlacementPlan, path: string, opts: { mediaTypes?: MediaTypeOptions | undefined; verify: ContentVerification }): Promise<string[]> {
  const { info } = plan;
  const own = info.extension;
  // Under the content check, bytes can only ever be stored under the extensions of their own
  // container family (JPEG bytes are refused as `.png`), or under an extension outside every
  // known family (which takes any format of its type): only those are looked at.
  const family = opts.verify === "reject" ? formatFamilies[own] : undefined;
  const table = normalizeMediaTypeOptions(opts.mediaTypes);
  const key = `${own}|${family ?? ""}`;
  let extensions = siblingExtensions.get(table)?.get(key);
  if (!extensions) {
    extensions = [...table]
      .filter(([extension, type]) => type === info.mediaType && extension !== own && (family === undefined || formatFamilies[extension] === undefined || formatFamilies[extension] === family))
      .map(([extension]) => extension);
    if (!siblingExtensions.has(table)) siblingExtensions.set(table, new Map());
    siblingExtensions.get(table)?.set(key, extensions);
  }
  // The default name is `<id><ext>` beside `path`, in a directory planned (and checked) already:
  // no need to plan each sibling, which would walk realpath a dozen times per upload.
  if (!plan.naming) return extensions.map((extension) => join(dirname(path), `${info.id}${extension}`));
  const paths = await Promise.all(
    extensions.map((extension) => planNamedPath(plan.directories, Object.freeze({ ...info, extension, originalName: `x${extension}` }), plan.naming).catch(() => undefined)),
  );
  return [...new Set(paths.filter((other): other is string => other !== undefined && other !== path))];
}

/**
 * Puts the complete temp file at `path` without ever replacing a file: the same content found
 * under a sibling name is kept instead (byte-compared); `link` fails with EEXIST when the path
 * is taken, which makes concurrent stores of the same content in several processes safe.
 */
export async function placeFile(temp: string, path: string, siblings: string[], id: string, size: number, durable: boolean): Promise<{ path: string; created: boolean }> {
  const existing = (await Promise.all(siblings.map(async (sibling) => ((await isFile(sibling)) ? sibling : undefined)))).find(Boolean);
  if (existing) {
    const kept = await keepExisting(temp, existing, id, size);
    if (kept) return { path: existing, created: false };
  }
  // The existing file can be retired (removed after a refused record) while it is compared:
  // then the name is free again, and this upload takes it.
  // On a local file system, on the event loop: a link is a few microseconds, less than a round
  // trip through the thread pool (see utils/local-fs.ts).
  const local = isLocalFileSystem(dirname(temp));
  for (let attempt = 0; ; attempt += 1) {
    try {
      if (local) linkSync(temp, path);
      else await link(temp, path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A custom name's subdirectory, made when it is missing (not before every link).
      if (code === "ENOENT" && attempt === 0 && (await isFile(temp))) {
        await mkdir(dirname(path), { recursive: true }).catch((cause: unknown) => {
          throw writeError(dirname(path), cause);
        });
        continue;
      }
      if (code === "EEXIST") {
        if (await keepExisting(temp, path, id, size)) return { path, created: false };
        if (attempt < 3) continue;
      }
      if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
        return placeWithoutLinks(temp, path, id, size, durable);
      }
      throw writeError(path, error);
    }
    break;
  }
  if (local) unlinkSync(temp);
  else await unlink(temp);
  if (durable) await syncDirectory(dirname(path));
  return { path, created: true };
}

/**
 * A file system without hard links: a directory made next to the target (mkdir is exclusive
 * everywhere) guards the check-then-rename, so nothing is ever replaced. Placing takes
 * milliseconds: a guard older than a minute was left by a crash and is taken over.
 */
async function placeWithoutLinks(temp: string, path: string, id: string, size: number, durable: boolean): Promise<{ path: string; created: boolean }> {
  const guard = join(dirname(path), `.${basename(path)}.placing`);
  for (;;) {
    try {
      await mkdir(guard);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw writeError(path, error);
      const stats = await stat(guard).catch(() => undefined);
      if (stats && Date.now() - stats.mtimeMs > 60_000) await rmdir(guard).catch(() => {});
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    if (await isFile(path)) {
      if (await keepExisting(temp, path, id, size)) return { path, created: false };
      // Retired meanwhile: the name is free.
    }
    await rename(temp, path).catch((renameError: unknown) => {
      throw writeError(path, renameError);
    });
  } finally {
    await rmdir(guard).catch(() => {});
  }
  if (durable) await syncDirectory(dirname(path));
  return { path, created: true };
}

/**
 * Compares the upload with the file at `path`: identical means the upload is dropped (`true`);
 * different bytes are an ID collision; no file there any more (it was retired meanwhile) means
 * `false`, the temp file kept for the caller to place.
 */
async function keepExisting(temp: string, path: string, id: string, size: number): Promise<boolean> {
  const same = await sameBytes(temp, path, size);
  if (same === undefined) return false;
  await unlink(temp);
  if (!same) throw new MediaIdCollisionError(id, path);
  return true;
}

/**
 * Streams both files side by side in 1 MiB blocks and stops at the first difference;
 * `undefined` when `b` is gone.
 */
async function sameBytes(a: string, b: string, size: number): Promise<boolean | undefined> {
  const [opened, other] = await Promise.allSettled([open(a, "r"), open(b, "r")]);
  if (opened.status === "rejected" || other.status === "rejected") {
    if (opened.status === "fulfilled") await opened.value.close();
    if (other.status === "fulfilled") await other.value.close();
    const failure = opened.status === "rejected" ? opened.reason : (other as PromiseRejectedResult).reason;
    if (opened.status === "fulfilled" && (failure as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new MediaReadError(opened.status === "rejected" ? a : b, describeFsError(failure), failure);
  }
  const left = opened.value;
  const right = other.value;
  try {
    if ((await right.stat()).size !== size) return false;
    const bufferA = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
    const bufferB = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
    for (let position = 0; position < size; position += WRITE_BATCH_BYTES) {
      const length = Math.min(WRITE_BATCH_BYTES, size - position);
      const [readA, readB] = await Promise.all([
        readAt(left, bufferA, length, position),
        readAt(right, bufferB, length, position),
      ]);
      if (readA !== length || readB !== length) return false;
      if (!bufferA.subarray(0, length).equals(bufferB.subarray(0, length))) return false;
    }
    return true;
  } finally {
    await Promise.all([left.close(), right.close()]);
  }
}
