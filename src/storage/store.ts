import { randomBytes } from "node:crypto";
import { closeSync, createReadStream, fsync as fsyncFd, linkSync, openSync, unlinkSync, write as writeFd, writev as writevFd } from "node:fs";
import { type FileHandle, link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import {
  MediaContentMismatchError,
  MediaIdCollisionError,
  MediaReadError,
  MediaTooLargeError,
  MediaWriteError,
} from "../errors/index.ts";
import { computeMediaIdSync, initMediaIdHasher, type MediaId } from "../media-id/index.ts";
import {
  type DetectedMediaKind,
  detectMediaKind,
  MediaType,
  mediaTypeName,
  type MediaTypeOptions,
} from "../media-type/index.ts";
import { formatFamilies } from "../media-type/extensions.ts";
import { DETECTION_BYTES, fileExtension, normalizeMediaTypeOptions, resolveMediaType } from "../media-type/resolve.ts";
import { abandonSource, type ByteStream, isByteStream, iterateBytes } from "../utils/byte-source.ts";
import { describeFsError, syncDirectory } from "../utils/fs-errors.ts";
import { createKeyedLock } from "../utils/keyed-lock.ts";
import { isLocalFileSystem } from "../utils/local-fs.ts";
import { rejectUnknownOptions } from "../utils/options.ts";
import { isOwnerAlive, OWNER_KEY_PATTERN, processOwnerKey } from "../utils/process-identity.ts";
import { sanitizeMediaName } from "./name.ts";
import { directoryFor, normalizeStorageDirectories, planStoragePath, type StorageDirectories, type StorageNaming } from "./plan.ts";

/** What {@link storeMedia} accepts: a stream, bytes, or the path of an existing file to copy in. */
export type StoreMediaSource = ByteStream | Uint8Array | string;

/** How uploaded bytes are checked against the type their name declares. */
export type ContentVerification = "reject" | "warn" | "off";

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
   * `fsync` the file before it is renamed into place and its directory after, so a power cut
   * cannot lose a stored file. Slower on most disks.
   * @default false
   */
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

/**
 * Temp files are `.<16 hex>.<owner>.partial` in the type's directory, so {@link sweepPartials}
 * knows them and whose they are (`.<16 hex>.partial`, without an owner, from older releases).
 */
const PARTIAL_PATTERN = new RegExp(`^\\.[0-9a-f]{16}(?:\\.(${OWNER_KEY_PATTERN}))?\\.partial$`);
/** A stored file being removed: `.<its name>.<12 hex>.retired`, beside it until the removal is decided. */
const RETIRED_PATTERN = /^\.(.+)\.[0-9a-f]{12}\.retired$/;
/**
 * Writes go to disk in batches of this size: 256 KiB writes keep the throughput of 1 MiB ones
 * through HTTP (bench:e2e) at a quarter of the memory per upload in flight (16 uploads: 8 MiB).
 */
const WRITE_BATCH_BYTES = 256 << 10;
const verifications: readonly ContentVerification[] = ["reject", "warn", "off"];
/** Every option of {@link storeMedia}, for the check of unknown ones. */
export const storeOptionNames = ["originalName", "directories", "maxBytes", "signal", "onProgress", "verify", "naming", "mediaTypes", "beforePlace", "fsync"] as const;

interface NormalizedStoreOptions extends Omit<StoreMediaOptions, "verify" | "directories"> {
  verify: ContentVerification;
  directories: Readonly<StorageDirectories>;
}

/** Checks and copies the options; a `TypeError` names the bad one. Never mutates `options`. */
function normalizeStoreOptions(options: StoreMediaOptions): NormalizedStoreOptions {
  if (options === null || typeof options !== "object") throw new TypeError("Expected options with `originalName` and `directories`.");
  rejectUnknownOptions(options, storeOptionNames, "storeMedia");
  const { originalName, maxBytes, verify = "reject", onProgress, naming } = options;
  if (typeof originalName !== "string" || originalName === "") {
    throw new TypeError(`Expected \`originalName\` to be a non-empty string, got ${JSON.stringify(originalName)}.`);
  }
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
    throw new TypeError(`Expected \`maxBytes\` to be a non-negative integer, got ${String(maxBytes)}.`);
  }
  if (!verifications.includes(verify)) {
    throw new TypeError(`Expected \`verify\` to be "reject", "warn" or "off", got ${JSON.stringify(verify)}.`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw new TypeError("Expected `onProgress` to be a function.");
  if (naming !== undefined && typeof naming !== "function") throw new TypeError("Expected `naming` to be a function.");
  if (options.beforePlace !== undefined && typeof options.beforePlace !== "function") {
    throw new TypeError("Expected `beforePlace` to be a function.");
  }
  normalizeMediaTypeOptions(options.mediaTypes);
  return { ...options, verify, directories: normalizeStorageDirectories(options.directories) };
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
export async function storeMedia(source: StoreMediaSource, options: StoreMediaOptions): Promise<StoredMedia> {
  const opts = normalizeStoreOptions(options);
  opts.signal?.throwIfAborted();
  const mediaType = resolveMediaType(opts.originalName, opts.mediaTypes);
  // A path source is checked first; then the directory and the temp file; the source is opened
  // last, and let go of on any failure before it was read (never a leaked descriptor, never a
  // request left stalled).
  if (typeof source === "string") await checkSourceFile(source);
  else if (!(source instanceof Uint8Array) && !isByteStream(source)) {
    throw new TypeError("Expected a stream, bytes or a file path as the source of `storeMedia`.");
  }
  const directory = directoryFor(opts.directories, mediaType);
  const temp = join(directory, `.${randomBytes(8).toString("hex")}.${processOwnerKey}.partial`);
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
    const { size, detected } = await writeAll(handle, chunks, mediaType, opts, owned);
    if (opts.fsync) await handle.sync();
    const id = computeMediaIdSync(handle.fd);
    await handle.close();
    handle = undefined;
    return await placeStored(temp, { id, mediaType, size, detected }, opts);
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
  media: { id: MediaId; mediaType: MediaType; size: number; detected: DetectedMediaKind | undefined },
  opts: NormalizedStoreOptions,
): Promise<StoredMedia> {
  const { id, mediaType, size, detected } = media;
  const plan = { id, originalName: opts.originalName, mediaType, directories: opts.directories, naming: opts.naming };
  const path = await planStoragePath(plan);
  await opts.beforePlace?.(Object.freeze({ id, mediaType, path, size }));
  const placed = await withIdLock(id, async () => placeFile(temp, path, await siblingPaths(plan, path, opts), id, size, opts.fsync === true));
  return Object.freeze({ id, mediaType, detected, path: placed.path, size, name: sanitizeMediaName(opts.originalName), created: placed.created });
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
 * `beforePlace`, a disk error) it is left where it was, for the caller to decide. With `fsync`,
 * as for {@link storeMedia}: the file's data is synced before it is linked, its directory after.
 *
 * @example
 * const stored = await storeCompleteFile("/data/videos/.uploads/9f2c…", { originalName: "clip.mp4", directories });
 */
export async function storeCompleteFile(path: string, options: StoreCompleteFileOptions): Promise<StoredMedia> {
  const opts = normalizeStoreOptions(options);
  const mediaType = resolveMediaType(opts.originalName, opts.mediaTypes);
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
    const detected = opts.verify === "off" ? undefined : await checkContent(head, mediaType, opts);
    media = { id: computeMediaIdSync(handle.fd), mediaType, size, detected };
    // As storeMedia: the file's data on disk before its name is (a read-only descriptor syncs too).
    if (opts.fsync) {
      await handle.sync().catch((error: unknown) => {
        throw writeError(path, error);
      });
    }
  } finally {
    await handle.close();
  }
  await mkdir(directoryFor(opts.directories, mediaType), { recursive: true }).catch((error: unknown) => {
    throw writeError(directoryFor(opts.directories, mediaType), error);
  });
  return placeStored(path, media, opts);
}

/**
 * The content check: what the leading bytes are, if they may carry the declared name (the same
 * container family); a mismatch throws ({@link MediaContentMismatchError}) or warns, by `verify`.
 */
async function checkContent(head: Uint8Array, mediaType: MediaType, opts: Pick<StoreMediaOptions, "originalName" | "verify">): Promise<DetectedMediaKind | undefined> {
  const detected = await detectMediaKind(head);
  if (detected?.mediaType === mediaType && sameFamily(fileExtension(opts.originalName), detected.extension)) return detected;
  const declared = formatFamilies[fileExtension(opts.originalName)] ? `${mediaTypeName(mediaType)} (${fileExtension(opts.originalName)})` : mediaTypeName(mediaType);
  const mismatch = new MediaContentMismatchError(opts.originalName, declared, detected?.mime);
  if (opts.verify === "reject") throw mismatch;
  process.emitWarning(mismatch.message, { code: "MEDIA_INTAKE_CONTENT_MISMATCH" });
  return detected;
}

/**
 * The store's content check on the head of a file that is still arriving (a resumable upload's
 * first bytes, up to `DETECTION_BYTES`): what the bytes are, or a {@link MediaContentMismatchError}.
 */
export async function checkMediaHead(head: Uint8Array, options: Pick<StoreMediaOptions, "originalName" | "verify" | "mediaTypes">): Promise<DetectedMediaKind | undefined> {
  if (options.verify === "off") return undefined;
  return checkContent(head, resolveMediaType(options.originalName, options.mediaTypes), { originalName: options.originalName, verify: options.verify ?? "reject" });
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
 * Whether bytes of the detected format may carry the declared extension: the same container
 * family, or (for an extension outside the known families) any format of the same media type.
 */
function sameFamily(declared: string, detected: string): boolean {
  const family = formatFamilies[declared];
  return family === undefined || family === formatFamilies[detected];
}

/**
 * The store's write loop: {@link writeChunksAt} from the start of the temp file, with
 * `maxBytes`, the content check on the first bytes and `onProgress` on the way.
 */
async function writeAll(
  handle: WritableFile,
  chunks: AsyncIterable<Uint8Array>,
  mediaType: MediaType,
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
    detected = await checkContent(bytes, mediaType, opts);
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

/**
 * Writes `chunks` into `handle` from `position` through two pooled buffers: each full buffer
 * goes out in one positional `write` while the other fills, so reading and writing overlap and
 * memory stays at two buffers. `onChunk` sees each chunk before it is copied (a throw stops
 * the write); resolves to the bytes written, once every one of them is on disk: a short write
 * is continued from the first byte missing, a failed one (ENOSPC) rejects, and what is on disk
 * is then always a true prefix. The handle is the caller's to close.
 */
export async function writeChunksAt(
  handle: WritableFile,
  chunks: AsyncIterable<Uint8Array>,
  position: number,
  hooks: {
    onChunk?: (chunk: Uint8Array) => void | Promise<void>;
    beforeLastWrite?: () => Promise<void>;
    onWritten?: (end: number) => void;
    describe?: (error: unknown) => unknown;
    /**
     * The chunks are the writer's to keep (a Node stream's are: it never writes into a chunk
     * it pushed): they go out as they are, gathered in one `writev`, not copied.
     */
    owned?: boolean;
  } = {},
): Promise<number> {
  if (hooks.owned && handle.writev) return gatherChunksAt(handle as WritableFile & Required<Pick<WritableFile, "writev">>, chunks, position, hooks);
  const pair = takeBuffers();
  let [active, spare] = pair;
  let filled = 0;
  let written = 0;
  const writes = oneWriteInFlight(handle, hooks);
  const flush = async () => {
    const buffer = active;
    const length = filled;
    const at = position + written;
    // The other buffer is reused next: the write still running on it must end first.
    await writes.next(() => handle.write(buffer, 0, length, at), [buffer.subarray(0, length)], at, length, (written += length));
    [active, spare] = [spare, active];
    filled = 0;
  };
  try {
    for await (const chunk of chunks) {
      await hooks.onChunk?.(chunk);
      for (let offset = 0; offset < chunk.byteLength; ) {
        const take = Math.min(WRITE_BATCH_BYTES - filled, chunk.byteLength - offset);
        active.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === WRITE_BATCH_BYTES) await flush();
      }
    }
    await hooks.beforeLastWrite?.();
    if (filled > 0) await flush();
    await writes.last();
  } catch (error) {
    // The caller closes the handle: a write still running on it must finish first.
    await writes.settled();
    throw error;
  } finally {
    // No write uses them any more (each was awaited): the next store takes them.
    giveBuffers(pair);
  }
  return written;
}

/**
 * {@link writeChunksAt} without the copy: chunks gathered up to WRITE_BATCH_BYTES go out in one
 * positional `writev` while the next batch gathers.
 */
async function gatherChunksAt(
  handle: WritableFile & Required<Pick<WritableFile, "writev">>,
  chunks: AsyncIterable<Uint8Array>,
  position: number,
  hooks: Parameters<typeof writeChunksAt>[3] & {},
): Promise<number> {
  let batch: Uint8Array[] = [];
  let gathered = 0;
  let written = 0;
  const writes = oneWriteInFlight(handle, hooks);
  const flush = async () => {
    const buffers = batch;
    const length = gathered;
    const at = position + written;
    batch = [];
    gathered = 0;
    // The next batch gathers while this one is written.
    await writes.next(() => handle.writev(buffers, at), buffers, at, length, (written += length));
  };
  try {
    for await (const chunk of chunks) {
      await hooks.onChunk?.(chunk);
      if (chunk.byteLength === 0) continue;
      batch.push(chunk);
      gathered += chunk.byteLength;
      if (gathered >= WRITE_BATCH_BYTES) await flush();
    }
    await hooks.beforeLastWrite?.();
    if (gathered > 0) await flush();
    await writes.last();
  } catch (error) {
    await writes.settled();
    throw error;
  }
  return written;
}

/**
 * The write loops' writes, one in flight at a time: `next` waits for the one running, then
 * starts its own (`write`, of the `length` bytes of `buffers` at `at`), which reports `end`
 * once every byte is written or fails as `describe` says. A short write is continued
 * ({@link writeRest}); the whole write is one comparison more. `last` is the last write;
 * `settled` waits for it, whatever its outcome.
 */
function oneWriteInFlight(handle: WritableFile, hooks: Pick<Parameters<typeof writeChunksAt>[3] & {}, "onWritten" | "describe">) {
  let pending: Promise<void> | undefined;
  const fail = (error: unknown) => {
    throw hooks.describe ? hooks.describe(error) : error;
  };
  return {
    async next(write: () => Promise<{ bytesWritten: number }>, buffers: Uint8Array[], at: number, length: number, end: number): Promise<void> {
      await pending;
      pending = write().then(({ bytesWritten }) => {
        if (bytesWritten === length) return hooks.onWritten?.(end);
        return writeRest(handle, buffers, at, bytesWritten).then(() => hooks.onWritten?.(end), fail);
      }, fail);
      // Seen by the next write or the end of the loop; until then not an unhandled rejection.
      pending.catch(() => {});
    },
    last: () => pending,
    settled: () => pending?.catch(() => {}),
  };
}

/**
 * The rest of a write that came back short: `buffers` go at `position`, the first `done` bytes
 * of them are on disk. Written on from the first byte missing, one positional write at a time,
 * until all are on disk or a write fails (a full disk: ENOSPC). A write that takes no byte
 * fails too, rather than loop: never a success for bytes that are not on disk.
 */
async function writeRest(handle: WritableFile, buffers: Uint8Array[], position: number, done: number): Promise<void> {
  let at = position;
  let skip = Number.isSafeInteger(done) && done > 0 ? done : 0;
  for (const buffer of buffers) {
    let offset = Math.min(skip, buffer.byteLength);
    skip -= offset;
    while (offset < buffer.byteLength) {
      const { bytesWritten } = await handle.write(buffer, offset, buffer.byteLength - offset, at + offset);
      if (!(bytesWritten > 0)) {
        throw new Error(`a write at byte ${at + offset} took no byte of ${buffer.byteLength - offset} (the file system made no progress)`);
      }
      offset += bytesWritten;
    }
    at += buffer.byteLength;
  }
}

/**
 * Write buffers kept between stores: two fresh buffers per upload cost more than a small
 * upload's whole store (allocation and the full GCs that external memory brings). At most
 * `POOLED_PAIRS` pairs are kept; a store past that many at once allocates its own.
 */
const POOLED_PAIRS = 8;
const pooled: Array<[Buffer, Buffer]> = [];
function takeBuffers(): [Buffer, Buffer] {
  return pooled.pop() ?? [Buffer.allocUnsafeSlow(WRITE_BATCH_BYTES), Buffer.allocUnsafeSlow(WRITE_BATCH_BYTES)];
}
function giveBuffers(pair: [Buffer, Buffer]): void {
  if (pooled.length < POOLED_PAIRS) pooled.push(pair);
}

/** Placements of one ID in this process, one after another (so two names of one content never both land). */
const withIdLock = createKeyedLock();

/**
 * Where the same content may already be stored under another extension of its type (`.mov`
 * after `.mp4`, `.jpeg` after `.jpg`): the path each extension would get, this upload's first.
 */
async function siblingPaths(plan: Parameters<typeof planStoragePath>[0], path: string, opts: Pick<NormalizedStoreOptions, "mediaTypes" | "verify">): Promise<string[]> {
  const own = fileExtension(plan.originalName);
  // Under the content check, bytes can only ever be stored under the extensions of their own
  // container family (JPEG bytes are refused as `.png`), or under an extension outside every
  // known family (which takes any format of its type): only those are looked at.
  const family = opts.verify === "reject" ? formatFamilies[own] : undefined;
  const extensions = [...normalizeMediaTypeOptions(opts.mediaTypes)]
    .filter(([extension, type]) => type === plan.mediaType && extension !== own && (family === undefined || formatFamilies[extension] === undefined || formatFamilies[extension] === family))
    .map(([extension]) => extension);
  // The default name is `<id><ext>` beside `path`, in a directory planned (and checked) already:
  // no need to plan each sibling, which would walk realpath a dozen times per upload.
  if (!plan.naming) return extensions.map((extension) => join(dirname(path), `${plan.id}${extension}`));
  const paths = await Promise.all(extensions.map((extension) => planStoragePath({ ...plan, originalName: `x${extension}` }).catch(() => undefined)));
  return [...new Set(paths.filter((other): other is string => other !== undefined && other !== path))];
}

/**
 * Puts the complete temp file at `path` without ever replacing a file: the same content found
 * under a sibling name is kept instead (byte-compared); `link` fails with EEXIST when the path
 * is taken, which makes concurrent stores of the same content in several processes safe.
 */
async function placeFile(temp: string, path: string, siblings: string[], id: string, size: number, durable: boolean): Promise<{ path: string; created: boolean }> {
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

/** Reads `length` bytes at `position`, topping up short reads; fewer only at the end of the file. */
async function readAt(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  let total = 0;
  while (total < length) {
    const { bytesRead } = await handle.read(buffer, total, length - total, position + total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return total;
}

/**
 * What the store writes to: a `FileHandle`, or a descriptor opened on the event loop. Each
 * write is one system call and may write fewer bytes than asked (a disk filling up, a network
 * file system): the write loops continue it ({@link writeRest}).
 */
export interface WritableFile {
  readonly fd: number;
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** `buffers`, in order, from `position`. */
  writev?(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the temp file (`wx+`): on a local file system with a system call on the event loop
 * (a create is a few microseconds; the data's writes still go through the thread pool), else a
 * `FileHandle`.
 */
async function openTemp(temp: string, directory: string): Promise<WritableFile> {
  if (!isLocalFileSystem(directory)) return open(temp, "wx+");
  const fd = openSync(temp, "wx+");
  let closed = false;
  return {
    fd,
    // One system call each, as a FileHandle's: a short write is continued by the write loop.
    write: (buffer, offset, length, position) =>
      new Promise((resolve, reject) => writeFd(fd, buffer, offset, length, position, (error, bytesWritten) => (error ? reject(error) : resolve({ bytesWritten })))),
    writev: (buffers, position) =>
      new Promise((resolve, reject) => writevFd(fd, buffers, position, (error, bytesWritten) => (error ? reject(error) : resolve({ bytesWritten })))),
    sync: () => new Promise<void>((resolve, reject) => fsyncFd(fd, (error) => (error ? reject(error) : resolve()))),
    async close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isFile(),
    () => false,
  );
}

function writeError(target: string, error: unknown): Error {
  if (error instanceof MediaWriteError) return error;
  return new MediaWriteError(target, describeFsError(error), error);
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
  rejectUnknownOptions(options, ["olderThanMs"], "sweepPartials");
  const { olderThanMs = 3_600_000 } = options;
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new TypeError(`Expected \`olderThanMs\` to be a non-negative number, got ${String(olderThanMs)}.`);
  }
  const dirs = normalizeStorageDirectories(directories);
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

/** Puts a retired file back at `path`, unless a file landed there meanwhile (then that one stays). */
export async function restoreRetiredFile(retired: string, path: string): Promise<void> {
  await link(retired, path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw writeError(path, error);
  });
  await unlink(retired);
}
