// At start, before anything is served: every folder the service writes must be writable, or the
// process stops with one line that names the variable to fix (a read-only volume, a typo, a
// missing mount), instead of a stack from deep inside the first module that tries.
import { randomBytes } from "node:crypto";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/** A folder to check, and the setting that names it (e.g. `VIDEOS_DIR`). */
export interface NamedFolder {
  readonly variable: string;
  readonly path: string;
}

/**
 * Makes each folder (with its parents) and writes and removes a probe file in it. Resolves to
 * `undefined` when all are writable, or to the one line that says which is not and why.
 */
export async function unwritableFolder(folders: readonly NamedFolder[]): Promise<string | undefined> {
  for (const { variable, path } of folders) {
    const probe = join(path, `.write-check-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(path, { recursive: true });
      await (await open(probe, "wx")).close();
      await rm(probe, { force: true });
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      // A recursive mkdir on a read-only volume reports ENOENT: say what it most likely is.
      const why =
        code === "EROFS" || code === "ENOENT"
          ? "read-only or missing"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : code === "ENOTDIR" || code === "EEXIST"
              ? "it or a folder above it is a file, not a folder"
              : "not writable";
      return `Cannot start: ${variable} (${path}) cannot be written: ${why} (${code ?? "error"}).`;
    }
  }
  return undefined;
}

/**
 * The first folder that is not on the file system of `first` (each made already), as the one line
 * that names both variables: a finished upload is linked into place, never copied, so the tus
 * folder and the storage folders share one volume. `undefined` when all do.
 */
export async function folderOnAnotherFileSystem(first: NamedFolder, others: readonly NamedFolder[]): Promise<string | undefined> {
  const { dev } = await stat(first.path);
  for (const other of others) {
    if ((await stat(other.path)).dev !== dev) {
      return `Cannot start: ${other.variable} (${other.path}) is on another file system than ${first.variable} (${first.path}): a finished upload is linked into place, never copied; put them on one volume.`;
    }
  }
  return undefined;
}
