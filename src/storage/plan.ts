import { realpath } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { StoragePathEscapeError } from "../errors/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import { fileExtension, MediaType } from "../media-type/index.ts";
import { checkOptionsOf } from "../utils/index.ts";

/** Where stored media go: one directory per media type. */
export interface StorageDirectories {
  /** Directory for videos; a relative path is resolved against the working directory once. */
  videosDir: string;
  /** Directory for images; a relative path is resolved against the working directory once. */
  imagesDir: string;
}

/** What a custom naming function is told about the media it names (a frozen object). */
export interface StorageNameInfo {
  /** The media ID, 16 lowercase hex digits. */
  readonly id: string;
  /** The lowercased extension of the original name, with its dot (`".mp4"`). */
  readonly extension: string;
  /** The original file name as uploaded (untrusted: do not put it in a path unchecked). */
  readonly originalName: string;
  /** Video or Image. */
  readonly mediaType: MediaType;
}

/**
 * Names a stored file, relative to its type's directory (`"ab/abcdef0123456789.mp4"` for a
 * two-level layout). The result must stay inside that directory, or the store fails with
 * {@link StoragePathEscapeError}. The same media must always get the same name, or duplicates
 * are not recognised.
 */
export type StorageNaming = (info: StorageNameInfo) => string;

/** Input of {@link planStoragePath}. */
export interface PlanStoragePathInput {
  /** The media ID (either case; a virtual ID is refused: it is never stored). */
  id: string;
  /** The original file name; its lowercased last extension ends the default name. */
  originalName: string;
  /** Video or Image: picks the directory. */
  mediaType: MediaType;
  /** The two directories. */
  directories: StorageDirectories;
  /** A custom name inside the type's directory. @default `${id}${extension}` */
  naming?: StorageNaming;
}

/**
 * Resolves both directories to absolute paths, once; a `TypeError` names a missing one, and the
 * function `check` stands for when given.
 */
export function normalizeStorageDirectories(directories: StorageDirectories, checks?: { fail(name: string, expected: string, value: unknown): never }): Readonly<StorageDirectories> {
  const check = (key: keyof StorageDirectories) => {
    const value: unknown = directories?.[key];
    if (typeof value !== "string" || value === "" || value.includes("\0")) {
      if (checks) checks.fail(`directories.${key}`, "a directory path", value);
      throw new TypeError(`Expected \`directories.${key}\` to be a directory path, got ${JSON.stringify(value)}.`);
    }
    return resolve(value);
  };
  return Object.freeze({ videosDir: check("videosDir"), imagesDir: check("imagesDir") });
}

/** The directory of a media type. */
export function directoryFor(directories: StorageDirectories, mediaType: MediaType): string {
  return resolve(mediaType === MediaType.Video ? directories.videosDir : directories.imagesDir);
}

/**
 * The persistent path of docs/contract.md "Storage path": `<dir for the type>/<id><ext>`, with `ext` the
 * lowercased extension of the original name (`clip.MP4` -> `<videosDir>/6a9b7ce7844aa871.mp4`).
 *
 * A custom `naming` result is refused with {@link StoragePathEscapeError} when it is empty,
 * absolute, holds NUL or `..` segments, or resolves (through symlinks that already exist)
 * outside the type's directory. Nothing is created.
 *
 * @example
 * await planStoragePath({ id, originalName: "clip.MP4", mediaType: MediaType.Video, directories });
 */
export async function planStoragePath(input: PlanStoragePathInput): Promise<string> {
  const id = normalizeMediaId(input.id);
  const directories = normalizeStorageDirectories(input.directories, checkOptionsOf("planStoragePath"));
  const extension = fileExtension(input.originalName);
  return planNamedPath(directories, Object.freeze({ id, extension, originalName: input.originalName, mediaType: input.mediaType }), input.naming);
}

/**
 * {@link planStoragePath} for a store, which has checked its directories, computed the ID and
 * taken the extension already (once per upload): `info` is what a custom `naming` is told.
 *
 * @internal used within storage/ only.
 */
export async function planNamedPath(directories: Readonly<StorageDirectories>, info: StorageNameInfo, naming: StorageNaming | undefined): Promise<string> {
  const directory = directoryFor(directories, info.mediaType);
  const name = naming ? naming(info) : `${info.id}${info.extension}`;
  const target = checkInside(directory, name);
  // A name directly in the directory has no directory of its own to be a symlink (and `link`
  // never follows one at the final name): only a name with subdirectories is walked.
  if (dirname(target) !== directory) await checkNoSymlinkEscape(directory, target, name);
  return target;
}

function checkInside(directory: string, name: unknown): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw new StoragePathEscapeError(directory, String(name), "the naming function must return a non-empty relative path");
  }
  const refuse = (reason: string) => new StoragePathEscapeError(directory, name, reason);
  if (name.includes("\0")) throw refuse("it contains a NUL byte");
  if (isAbsolute(name) || /^[a-zA-Z]:/.test(name) || name.startsWith("\\")) throw refuse("it is an absolute path");
  if (name.split(/[/\\]/).includes("..")) throw refuse('it has a ".." segment');
  const target = resolve(directory, name);
  const inside = relative(directory, target);
  if (inside === "" || inside.startsWith(`..${sep}`) || isAbsolute(inside)) throw refuse("it resolves outside the directory");
  return target;
}

/** The nearest existing ancestor of `target`, resolved through symlinks, must stay inside. */
async function checkNoSymlinkEscape(directory: string, target: string, name: string): Promise<void> {
  const realDirectory = await realpath(directory).catch(() => directory);
  for (let current = dirname(target); ; current = dirname(current)) {
    const real = await realpath(current).catch(() => undefined);
    if (real !== undefined) {
      if (real !== realDirectory && !real.startsWith(realDirectory + sep)) {
        throw new StoragePathEscapeError(directory, name, `a symlink leads outside the directory (to ${real})`);
      }
      return;
    }
    if (current === directory || dirname(current) === current) return;
  }
}

