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
  /** Said after the path when the variable is unset: where its default comes from ("the default under VIDEOS_DIR"). */
  readonly unsetNote?: string;
}

/** A folder as a message names it: `TUS_UPLOADS_DIR (/data/videos/.media-intake-uploads, the default under VIDEOS_DIR)`. */
export function folderName(folder: NamedFolder): string {
  return `${folder.variable} (${folder.path}${folder.unsetNote ? `, ${folder.unsetNote}` : ""})`;
}

/** Why a folder cannot be written, from the failure's code: one wording for the start and `/readyz`. */
export function whyUnwritable(code: string | undefined): string {
  if (code === "EROFS") return "read-only";
  // A recursive mkdir on a read-only volume reports ENOENT: say what it most likely is.
  if (code === "ENOENT") return "read-only or missing";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOTDIR" || code === "EEXIST") return "it or a folder above it is a file, not a folder";
  if (code === "ENOSPC") return "no space left";
  return "not writable";
}

/**
 * Makes each folder (with its parents) and writes and removes a probe file in it. Resolves to
 * `undefined` when all are writable, or to the one line that says which is not and why.
 */
export async function unwritableFolder(folders: readonly NamedFolder[]): Promise<string | undefined> {
  for (const folder of folders) {
    const { path } = folder;
    const probe = join(path, `.write-check-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(path, { recursive: true });
      await (await open(probe, "wx")).close();
      await rm(probe, { force: true });
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      const why = whyUnwritable(code);
      return `Cannot start: ${folderName(folder)} cannot be written: ${why} (${code ?? "error"}).`;
    }
  }
  return undefined;
}

/**
 * The first of `others` that is not on the file system of `first` (each made already), and the
 * sentence that names both variables: a finished upload is linked into place, never copied, so
 * the tus folder and the storage folders share one volume. `undefined` when all do. The one
 * comparison of the start check and of `/readyz`.
 */
export async function folderApart(first: NamedFolder, others: readonly NamedFolder[]): Promise<(NamedFolder & { message: string }) | undefined> {
  const { dev } = await stat(first.path);
  for (const other of others) {
    if ((await stat(other.path)).dev !== dev) {
      return {
        ...other,
        message: `${folderName(other)} is on another file system than ${folderName(first)}: a finished upload is linked into place, never copied; put them on one volume.`,
      };
    }
  }
  return undefined;
}

/** {@link folderApart} as the line that stops the start. */
export async function folderOnAnotherFileSystem(first: NamedFolder, others: readonly NamedFolder[]): Promise<string | undefined> {
  const apart = await folderApart(first, others);
  return apart && `Cannot start: ${apart.message}`;
}
