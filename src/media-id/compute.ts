import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readSync, type Stats } from "node:fs";
import { type ByteStream, checkOptionsOf, describeFsError, isByteStream, iterateBytes } from "../utils/index.ts";
import type { FileHandle } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { MediaReadError, MediaSizeMismatchError } from "../errors/index.ts";
import { formatMediaId, type MediaId } from "./format.ts";
import { loadedHasher, loadHasher } from "./hasher.ts";
import {
  FILE_BUFFER_BYTES,
  type FileOp,
  planFileSample,
  readBlobSamples,
  sampleBytes,
  StreamSampler,
} from "./sampling.ts";

/** Content that can be read at any position: bytes, a file path or URL, an open `FileHandle`, a `Blob`/`File`. */
export type MediaIdSource = Uint8Array | ArrayBuffer | string | URL | FileHandle | Blob;

/** Options of {@link computeMediaId}. */
export interface ComputeMediaIdOptions {
  /**
   * The content length in bytes. Required for a stream, whose middle sample depends on it; for
   * other sources, when given, it must match the real length.
   */
  size?: number;
  /** Aborts the computation; it then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Computes the media ID of docs/contract.md: XXH64 (seed 0) over the size and three 1 KiB samples
 * (the whole content below 3 KiB), as 16 lowercase hex digits.
 *
 * A file path, `URL` or `FileHandle` costs one `fstat` and at most three positional reads,
 * whatever the size; a `Blob` three slices; a stream is read once in O(1) memory and must
 * declare its `size` (a real length that differs is a {@link MediaSizeMismatchError}).
 * A string is always a path: pass text as bytes.
 *
 * @throws {MediaReadError} the file cannot be read (missing, a directory, no permission).
 * @throws {MediaSizeMismatchError} the length is not the declared one, or changed while read.
 * @example
 * const id = await computeMediaId("/uploads/clip.mp4"); // "6a9b7ce7844aa871"
 * const sameId = await computeMediaId(request, { size: Number(request.headers["content-length"]) });
 */
export function computeMediaId(input: ByteStream, options: ComputeMediaIdOptions & { size: number }): Promise<MediaId>;
export function computeMediaId(input: MediaIdSource, options?: ComputeMediaIdOptions): Promise<MediaId>;
export async function computeMediaId(
  input: MediaIdSource | ByteStream,
  options: ComputeMediaIdOptions = {},
): Promise<MediaId> {
  const check = checkOptionsOf("computeMediaId");
  check.known(options, ["size", "signal"]);
  const { signal } = options;
  const size = options.size === undefined ? undefined : check.integer("size", options.size, { min: 0, unit: "bytes" });
  signal?.throwIfAborted();
  const hash = loadHasher();
  const h64 = typeof hash === "function" ? hash : await hash;
  const buffer = Buffer.allocUnsafe(FILE_BUFFER_BYTES);
  const length = await sampleAny(input, buffer, size, signal);
  return formatMediaId(h64(buffer.subarray(0, length)));
}

/**
 * Computes the virtual media ID: `"V"` and the same 16 hex digits as {@link computeMediaId}.
 * It names content held in memory only; it is never stored nor sent to the annotations service.
 *
 * @example
 * await computeVirtualMediaId(frameBytes); // "V34c96acdcadb1bbb"
 */
export function computeVirtualMediaId(input: ByteStream, options: ComputeMediaIdOptions & { size: number }): Promise<string>;
export function computeVirtualMediaId(input: MediaIdSource, options?: ComputeMediaIdOptions): Promise<string>;
export async function computeVirtualMediaId(
  input: MediaIdSource | ByteStream,
  options?: ComputeMediaIdOptions,
): Promise<string> {
  return `V${await computeMediaId(input as MediaIdSource, options)}`;
}

/** The shared buffer of the sync path: it never yields, so one buffer serves every call. */
const syncBuffer = Buffer.allocUnsafeSlow(FILE_BUFFER_BYTES);
/** Views of `syncBuffer` by hash-input length, made once: a view per call costs more than the copy. */
const syncViews: Uint8Array[] = [];

/**
 * The synchronous media ID: the same value as {@link computeMediaId} for bytes, a file path
 * or `URL`, or an open file descriptor, without a trip through the thread pool (about 8 µs for
 * a file of any size). Blocks the event loop for those reads, so prefer it for local disks.
 * Needs the hasher loaded: `await initMediaIdHasher()` once at start-up.
 *
 * @throws {MediaIntakeError} with code `MEDIA_ID_NOT_READY` before the hasher is loaded.
 * @example
 * await initMediaIdHasher();
 * computeMediaIdSync("/data/videos/6a9b7ce7844aa871.mp4"); // "6a9b7ce7844aa871"
 */
export function computeMediaIdSync(input: Uint8Array | ArrayBuffer | string | URL | number): MediaId {
  const h64 = loadedHasher("computeMediaIdSync");
  let length: number;
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    length = sampleBytes(asBytes(input), syncBuffer);
  } else if (typeof input === "number") {
    length = sampleFdSync(input, `<fd ${input}>`);
  } else {
    const path = toPath(input);
    let fd: number;
    try {
      fd = openSync(path, READ_NO_WAIT);
    } catch (error) {
      throw readError(path, error);
    }
    try {
      length = sampleFdSync(fd, path);
    } finally {
      closeSync(fd);
    }
  }
  return formatMediaId(h64((syncViews[length] ??= syncBuffer.subarray(0, length))));
}

function sampleFdSync(fd: number, source: string): number {
  const plan = planFileSample(syncBuffer, source);
  try {
    let step = plan.next();
    while (!step.done) {
      step = plan.next(
        step.value.map((op) =>
          op.kind === "size"
            ? regularFileSize(fstatSync(fd), source)
            : readSync(fd, syncBuffer, op.offset, op.length, op.position),
        ),
      );
    }
    return step.value;
  } catch (error) {
    throw readError(source, error);
  }
}

async function sampleAny(
  input: MediaIdSource | ByteStream,
  buffer: Buffer,
  size: number | undefined,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    const bytes = asBytes(input);
    if (size !== undefined && size !== bytes.byteLength) {
      throw new MediaSizeMismatchError("<bytes>", size, bytes.byteLength, "the content is not its declared size");
    }
    return sampleBytes(bytes, buffer);
  }
  if (typeof input === "string" || input instanceof URL) return samplePath(toPath(input), buffer, size, signal);
  if (input instanceof Blob) return sampleBlob(input, buffer, size, signal);
  if (isFileHandle(input)) {
    return sampleFile(input, "<file handle>", buffer, size, signal);
  }
  if (isByteStream(input)) {
    if (size === undefined) {
      throw new TypeError("computeMediaId: expected `size` for a stream: its middle sample depends on the length, got undefined.");
    }
    const sampler = new StreamSampler(buffer, size, "<stream>");
    for await (const chunk of iterateBytes(input, signal)) sampler.push(chunk);
    return sampler.finish();
  }
  throw new TypeError(
    `Expected bytes, a file path, a URL, a FileHandle, a Blob or a byte stream, got ${describe(input)}.`,
  );
}

async function samplePath(path: string, buffer: Buffer, size: number | undefined, signal?: AbortSignal): Promise<number> {
  const fd = await new Promise<number>((resolve, reject) => {
    open(path, READ_NO_WAIT, (error, fd) => (error ? reject(readError(path, error)) : resolve(fd)));
  });
  try {
    return await sampleFile(fd, path, buffer, size, signal);
  } finally {
    // Not awaited: closing a read-only fd cannot lose data, and waiting for it would add a
    // whole trip through the thread pool (a third of the ID's time) to every call.
    close(fd, () => {});
  }
}

/**
 * Drives the file plan with async reads, each batch at once. `allSettled`, not `all`: the fd
 * must not be closed while a sibling read of a failed batch is still running on it.
 */
async function sampleFile(
  file: number | FileHandle,
  source: string,
  buffer: Buffer,
  size: number | undefined,
  signal?: AbortSignal,
): Promise<number> {
  const run = (op: FileOp): Promise<number> => {
    if (op.kind === "size") {
      const stats = typeof file === "number" ? fstatAsync(file) : file.stat();
      return stats.then((stats) => regularFileSize(stats, source));
    }
    return readOnce(file, buffer, op.offset, op.length, op.position);
  };
  const plan = planFileSample(buffer, source);
  try {
    let step = plan.next();
    while (!step.done) {
      signal?.throwIfAborted();
      const settled = await Promise.allSettled(step.value.map(run));
      const failed = settled.find((result) => result.status === "rejected");
      if (failed) throw failed.reason;
      step = plan.next(settled.map((result) => (result as PromiseFulfilledResult<number>).value));
    }
    if (size !== undefined) checkDeclared(buffer, size, source);
    return step.value;
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw readError(source, error);
  }
}

function checkDeclared(buffer: Buffer, size: number, source: string): void {
  const actual = Number(buffer.readBigUInt64LE(0));
  if (actual !== size) throw new MediaSizeMismatchError(source, size, actual, "the file is not its declared size");
}

/**
 * Read-only, without waiting: opening a FIFO (or a device) for reading would otherwise block
 * until a writer comes, for ever; with O_NONBLOCK it opens at once and fstat refuses it as "not a
 * regular file". Regular files read as usual.
 */
const READ_NO_WAIT = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function fstatAsync(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fstat(fd, (error, stats) => (error ? reject(error) : resolve(stats))));
}

function readOnce(file: number | FileHandle, buffer: Buffer, offset: number, length: number, position: number) {
  if (typeof file !== "number") return file.read(buffer, offset, length, position).then((result) => result.bytesRead);
  return new Promise<number>((resolve, reject) => {
    read(file, buffer, offset, length, position, (error, bytes) => (error ? reject(error) : resolve(bytes)));
  });
}

async function sampleBlob(blob: Blob, buffer: Buffer, size: number | undefined, signal?: AbortSignal): Promise<number> {
  if (size !== undefined && size !== blob.size) {
    throw new MediaSizeMismatchError("<blob>", size, blob.size, "the blob is not its declared size");
  }
  try {
    const length = await readBlobSamples(blob, buffer);
    signal?.throwIfAborted();
    return length;
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw readError("<blob>", error);
  }
}

function regularFileSize(stats: Stats, source: string): number {
  if (stats.isDirectory()) throw new MediaReadError(source, "is a directory, not a file");
  if (!stats.isFile()) throw new MediaReadError(source, "is not a regular file");
  return stats.size;
}

/** Wraps an fs failure in a {@link MediaReadError} that names the file; our own errors pass. */
function readError(source: string, error: unknown): Error {
  if (error instanceof MediaReadError || error instanceof MediaSizeMismatchError) return error;
  return new MediaReadError(source, describeFsError(error), error);
}

function isFileHandle(value: unknown): value is FileHandle {
  const candidate = value as Partial<FileHandle> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.fd === "number" &&
    typeof candidate.read === "function" &&
    typeof candidate.stat === "function"
  );
}

function asBytes(input: Uint8Array | ArrayBuffer): Uint8Array {
  return input instanceof Uint8Array ? input : new Uint8Array(input);
}

function toPath(input: string | URL): string {
  return typeof input === "string" ? input : fileURLToPath(input);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ?? "an object";
}
