// The public store: storeMedia (a stream, bytes or a file copied in) and storeCompleteFile (a
// complete file taken as is), their options, and the steps every store shares.
import { createReadStream } from "node:fs";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { MediaReadError, MediaTooLargeError } from "../errors/index.ts";
import { computeMediaIdSync, initMediaIdHasher, type MediaId } from "../media-id/index.ts";
import { type DetectedMediaKind, DETECTION_BYTES, type MediaType, type MediaTypeOptions, normalizeMediaTypeOptions } from "../media-type/index.ts";
import { abandonSource, type ByteStream, checkOptionsOf, describeFsError, durabilityOf, type Durability, isByteStream, iterateBytes, MINIMUM, type OptionChecks, showValue } from "../utils/index.ts";
import { partialPathIn } from "./cleanup.ts";
import { checkContent, type ContentVerification } from "./content-check.ts";
import { readAt, WRITE_BATCH_BYTES, writeError } from "./io.ts";
import { type PlacementPlan, placeFile, siblingPaths, withIdLock } from "./place.ts";
import { directoryFor, normalizeStorageDirectories, planNamedPath, type StorageDirectories, type StorageNaming } from "./plan.ts";
import { type UploadName, uploadNameOf } from "./upload-name.ts";
import { openTemp, type WritableFile, writeChunksAt } from "./write.ts";

/** What {@link storeMedia} accepts: a stream, bytes, or the path of an existing file to copy in. */
export type StoreMediaSource = ByteStream | Uint8Array | string;

/** Progress of a store, handed to `onProgress` frozen. */
export interface StoreProgress {
  /** Bytes written to disk so far. */
  readonly bytesWritten: number;
}

/** Options of {@link storeMedia}. */
export interface StoreMediaOptions {
  /** The file name the uploader gave: decides the media type and the extension. Untrusted. */
  originalName: string;
  /** Where videos and images go; missing directories are created. */
  directories: StorageDirectories;
  /**
   * The largest upload accepted, in bytes; one byte more and the store fails with
   * {@link MediaTooLargeError} as the bytes arrive (nothing is truncated, nothing kept).
   * @default undefined (no limit)
   */
  maxBytes?: number;
  /** Aborts the store: the temp file is removed and the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Called after each write with the bytes written so far. Runs on the store's path: a throw
   * inside it fails the store (temp file removed) with that error.
   */
  onProgress?: (progress: StoreProgress) => void;
  /**
   * Check the leading bytes against the declared type: `"reject"` refuses a `.jpg` that is no
   * image ({@link MediaContentMismatchError}, nothing kept), `"warn"` keeps it and emits a
   * process warning (code `MEDIA_INTAKE_CONTENT_MISMATCH`), `"off"` does not look.
   * @default "reject"
   */
  verify?: ContentVerification;
  /** A custom file name inside the type's directory; see {@link StorageNaming}. @default `<id><ext>` */
  naming?: StorageNaming;
  /** Extra or different extensions; see {@link MediaTypeOptions}. */
  mediaTypes?: MediaTypeOptions;
  /**
   * Runs once the bytes are complete and the ID and path are known, before the file is put in
   * place (a crash journal records the coming file here). A throw fails the store: the temp
   * file is removed and the call rejects with that error.
   */
  beforePlace?: (planned: PlannedMedia) => void | Promise<void>;
  /**
   * What a stored file survives once the call resolves: `"process"` a crash of the process (the
   * page cache outlives it), `"power"` a power cut too (the file's data synced before it is
   * linked into place, its folder after). See {@link Durability}.
   * @default "process"
   */
  durability?: Durability;
  /** @deprecated `durability: "power"` says the same; `true` is `"power"`. */
  fsync?: boolean;
}

/** What `beforePlace` is told (frozen). */
export interface PlannedMedia {
  readonly id: MediaId;
  readonly mediaType: MediaType;
  /** The absolute path the file is about to get. */
  readonly path: string;
  readonly size: number;
}

/** A stored media file, as {@link storeMedia} returns it (frozen). */
export interface StoredMedia {
  /** The media ID: 16 lowercase hex digits. */
  readonly id: MediaId;
  /** Video (1) or Image (2), from the name. */
  readonly mediaType: MediaType;
  /** What the bytes look like, beside the declared type; `undefined` when unrecognised or not checked. */
  readonly detected: DetectedMediaKind | undefined;
  /** The absolute persistent path. */
  readonly path: string;
  /** The size in bytes. */
  readonly size: number;
  /** The sanitised display name, for the record's Name. */
  readonly name: string;
  /** `false` when identical bytes were already stored at `path` (the upload was a duplicate). */
  readonly created: boolean;
}
const verifications: readonly ContentVerification[] = ["reject", "warn", "off"];
/**
 * Every option of {@link storeMedia}, for the check of unknown ones.
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
 */
export const storeOptionNames = ["originalName", "directories", "maxBytes", "signal", "onProgress", "verify", "naming", "mediaTypes", "beforePlace", "durability", "fsync"] as const;

interface NormalizedStoreOptions extends Omit<StoreMediaOptions, "verify" | "directories" | "durability" | "fsync"> {
  verify: ContentVerification;
  durability: Durability;
  directories: Readonly<StorageDirectories>;
}

/**
 * Checks the options every store takes beside `originalName` and `directories`, as `check`'s
 * function (the intake, multer and tus check them when they are given, not at the first upload).
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
 */
export function checkStoreOptions(options: Omit<Partial<StoreMediaOptions>, "originalName" | "directories">, check: OptionChecks): { verify: ContentVerification; durability: Durability } {
  if (options.maxBytes !== undefined) check.integer("maxBytes", options.maxBytes, { min: MINIMUM.maxBytes, unit: "bytes" });
  const verify = check.oneOf("verify", options.verify ?? "reject", verifications);
  check.func("onProgress", options.onProgress);
  check.func("naming", options.naming);
  check.func("beforePlace", options.beforePlace);
  const durability = durabilityOf(options, check);
  if (options.mediaTypes !== undefined) normalizeMediaTypeOptions(options.mediaTypes, check.nested("mediaTypes"));
  return { verify, durability };
}

/** Checks and copies the options of `of`; a `TypeError` names the bad one. Never mutates `options`. */
function normalizeStoreOptions(options: StoreMediaOptions, of: string): NormalizedStoreOptions {
  if (options === null || typeof options !== "object") throw new TypeError(`${of}: expected options with \`originalName\` and \`directories\`, got ${showValue(options)}.`);
  const check = checkOptionsOf(of);
  check.known(options, storeOptionNames);
  check.string("originalName", options.originalName);
  const { fsync: _fsync, ...rest } = options;
  return { ...rest, ...checkStoreOptions(options, check), directories: normalizeStorageDirectories(options.directories, check) };
}

/**
 * Streams an upload to its persistent path (docs/contract.md "Storage path"), in O(1) memory whatever
 * its size, and returns where it landed and what it is.
 *
 * 1. The type is resolved from `originalName` before a byte is written.
 * 2. Bytes stream into `.<random>.partial` (created exclusively) in the type's directory, in
 *    256 KiB writes; `maxBytes` and the content check apply as they arrive.
 * 3. The ID is taken from the temp file (three positional reads), then the file is linked into
 *    place without ever replacing an existing file, and the temp name removed.
 * 4. Same ID already stored: the bytes are compared; identical means `created: false` and the
 *    upload is dropped, different means {@link MediaIdCollisionError} and nothing changes.
 *
 * Any failure (abort, a source error, a size breach, a disk error) removes the temp file and
 * rejects with the real cause; no file is left at the final path.
 *
 * @example
 * const stored = await storeMedia(req, { originalName: "clip.MP4", directories, maxBytes: 4 * 2 ** 30 });
 * // { id: "6a9b7ce7844aa871", mediaType: 1, path: "/data/videos/6a9b7ce7844aa871.mp4", created: true, ... }
 */
export function storeMedia(source: StoreMediaSource, options: StoreMediaOptions): Promise<StoredMedia> {
  return storeMediaNamed(source, options, undefined);
}

/**
 * {@link storeMedia}, the upload's name resolved by the caller (the intake, once per upload):
 * `resolved` is used when it was resolved from these very options.
 *
 * @internal shared through storage/index.ts; not exported by the package.
 */
export async function storeMediaNamed(source: StoreMediaSource, options: StoreMediaOptions, resolved: UploadName | undefined): Promise<StoredMedia> {
  const opts = normalizeStoreOptions(options, "storeMedia");
  opts.signal?.throwIfAborted();
  const name = uploadNameOf(opts, resolved);
  const { mediaType } = name;
  // A path source is checked first; then the directory and the temp file; the source is opened
  // last, and let go of on any failure before it was read (never a leaked descriptor, never a
  // request left stalled).
  if (typeof source === "string") await checkSourceFile(source);
  else if (!(source instanceof Uint8Array) && !isByteStream(source)) {
    throw new TypeError("Expected a stream, bytes or a file path as the source of `storeMedia`.");
  }
  const directory = directoryFor(opts.directories, mediaType);
  const temp = partialPathIn(directory);
  let handle: WritableFile | undefined;
  let opened: Readable | undefined;
  try {
    await initMediaIdHasher();
    // The directory is made only when it is missing: one call, not two, for every upload after the first.
    handle = await openTemp(temp, directory).catch(async (error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw writeError(directory, error);
      await mkdir(directory, { recursive: true }).catch((cause: unknown) => {
        throw writeError(directory, cause);
      });
      return open(temp, "wx+").catch((cause: unknown) => {
        throw writeError(directory, cause);
      });
    });
  } catch (error) {
    if (typeof source !== "string") abandonSource(source);
    throw error;
  }
  try {
    if (typeof source === "string") opened = createReadStream(source, { highWaterMark: WRITE_BATCH_BYTES });
    const chunks = source instanceof Uint8Array ? oneChunk(source) : iterateBytes(opened ?? (source as ByteStream), opts.signal);
    // A Node stream's chunks are handed over (it never writes into one it pushed): written as
    // they are. Bytes and other iterables are the caller's: copied.
    const owned = opened !== undefined || source instanceof Readable;
    const { size, detected } = await writeAll(handle, chunks, name, opts, owned);
    if (opts.durability === "power") await handle.sync();
    const id = computeMediaIdSync(handle.fd);
    await handle.close();
    handle = undefined;
    return await placeStored(temp, { id, size, detected }, name, opts);
  } catch (error) {
    abandonSource(opened ?? source);
    await handle?.close().catch(() => {});
    // A failed cleanup never replaces the real cause (a sweep removes the file later).
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
}

/**
 * The end of every store: the path planned, `beforePlace` told, and the complete file `temp`
 * linked into place under the store's rules (its own name removed, or dropped for a duplicate).
 */
async function placeStored(
  temp: string,
  media: { id: MediaId; size: number; detected: DetectedMediaKind | undefined },
  name: UploadName,
  opts: NormalizedStoreOptions,
): Promise<StoredMedia> {
  const { id, size, detected } = media;
  const { mediaType } = name;
  const info = Object.freeze({ id, extension: name.extension, originalName: opts.originalName, mediaType });
  const plan: PlacementPlan = { directories: opts.directories, info, naming: opts.naming };
  const path = await planNamedPath(plan.directories, info, plan.naming);
  await opts.beforePlace?.(Object.freeze({ id, mediaType, path, size }));
  const placed = await withIdLock(id, async () => placeFile(temp, path, await siblingPaths(plan, path, opts), id, size, opts.durability === "power"));
  return Object.freeze({ id, mediaType, detected, path: placed.path, size, name: name.name, created: placed.created });
}

/** Options of {@link storeCompleteFile}: the store's, less what only a stream has. */
export type StoreCompleteFileOptions = Omit<StoreMediaOptions, "signal" | "onProgress">;

/**
 * Takes a complete file that already lies on the storage volume (a finished resumable upload)
 * as the upload itself, without copying a byte: `maxBytes` and the content check on its head,
 * its ID from three positional reads, then it is linked into place with the store's rules
 * (never replacing a file, one content one file, a byte-compared duplicate dropped) and its own
 * name removed. A duplicate or an ID collision removes it, as any store drops its temp file; on
 * any other failure (too large, content that is not what its name says, a throwing
 * `beforePlace`, a disk error) it is left where it was, for the caller to decide. With
 * `durability: "power"`, as for {@link storeMedia}: the file's data is synced before it is
 * linked, its directory after.
 *
 * @example
 * const stored = await storeCompleteFile("/data/videos/.uploads/9f2c…", { originalName: "clip.mp4", directories });
 */
export function storeCompleteFile(path: string, options: StoreCompleteFileOptions): Promise<StoredMedia> {
  return storeCompleteFileNamed(path, options, undefined);
}

/**
 * {@link storeCompleteFile}, the upload's name resolved by the caller (the intake, once per
 * upload): `resolved` is used when it was resolved from these very options.
 *
 * @internal shared through storage/index.ts; not exported by the package.
 */
export async function storeCompleteFileNamed(path: string, options: StoreCompleteFileOptions, resolved: UploadName | undefined): Promise<StoredMedia> {
  const opts = normalizeStoreOptions(options, "storeCompleteFile");
  const name = uploadNameOf(opts, resolved);
  const { mediaType } = name;
  await initMediaIdHasher();
  const handle = await open(path, "r").catch((error: unknown) => {
    throw new MediaReadError(path, describeFsError(error), error);
  });
  let media: Parameters<typeof placeStored>[1];
  try {
    const { size } = await handle.stat();
    if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new MediaTooLargeError(opts.originalName, opts.maxBytes);
    const head = Buffer.alloc(Math.min(size, DETECTION_BYTES));
    await readAt(handle, head, head.length, 0);
    const detected = opts.verify === "off" ? undefined : await checkContent(head, name, opts.verify);
    media = { id: computeMediaIdSync(handle.fd), size, detected };
    // As storeMedia: the file's data on disk before its name is (a read-only descriptor syncs too).
    if (opts.durability === "power") {
      await handle.sync().catch((error: unknown) => {
        throw writeError(path, error);
      });
    }
  } finally {
    await handle.close();
  }
  const directory = directoryFor(opts.directories, mediaType);
  await mkdir(directory, { recursive: true }).catch((error: unknown) => {
    throw writeError(directory, error);
  });
  return placeStored(path, media, name, opts);
}

async function checkSourceFile(path: string): Promise<void> {
  const stats = await stat(path).catch((error: unknown) => {
    throw new MediaReadError(path, describeFsError(error), error);
  });
  if (!stats.isFile()) throw new MediaReadError(path, "is not a regular file");
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * The store's write loop: {@link writeChunksAt} from the start of the temp file, with
 * `maxBytes`, the content check on the first bytes and `onProgress` on the way.
 */
async function writeAll(
  handle: WritableFile,
  chunks: AsyncIterable<Uint8Array>,
  name: UploadName,
  opts: NormalizedStoreOptions,
  owned: boolean,
): Promise<{ size: number; detected: DetectedMediaKind | undefined }> {
  const limit = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  const head: Uint8Array[] = [];
  let received = 0;
  let checked = opts.verify === "off";
  let detected: DetectedMediaKind | undefined;
  const check = async () => {
    checked = true;
    const bytes = Buffer.concat(head);
    head.length = 0;
    detected = await checkContent(bytes, name, opts.verify);
  };
  await writeChunksAt(handle, chunks, 0, {
    async onChunk(chunk) {
      received += chunk.byteLength;
      if (received > limit) throw new MediaTooLargeError(opts.originalName, limit);
      if (!checked) {
        head.push(chunk);
        if (received >= DETECTION_BYTES) await check();
      }
    },
    async beforeLastWrite() {
      if (!checked) await check();
    },
    onWritten: (end) => opts.onProgress?.(Object.freeze({ bytesWritten: end })),
    describe: (error) => writeError(opts.originalName, error),
    owned,
  });
  return { size: received, detected };
}

