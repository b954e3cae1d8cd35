// The byte layout of docs/contract.md "Media ID": size8 || bytes[0,1024) || bytes[m,m+1024) || bytes[size-1024,size)
// for size >= 3072, else size8 || the whole content. All sources fill one buffer with it.
import { MediaSizeMismatchError } from "../errors/index.ts";

export const SAMPLE_BYTES = 1024;
/** From this size on, three samples are taken instead of the whole content. */
export const SAMPLED_FROM = 3 * SAMPLE_BYTES;
export const PREFIX_BYTES = 8;
/** The largest hash input: the size and three samples. */
export const MAX_INPUT_BYTES = PREFIX_BYTES + 3 * SAMPLE_BYTES;
/** The head read asks one byte past the whole-content limit, to see a small file that grew. */
const HEAD_READ_BYTES = SAMPLED_FROM + 1;
/** Buffers handed to the file planner must hold the head read, or a tail read with its extra byte. */
export const FILE_BUFFER_BYTES = PREFIX_BYTES + HEAD_READ_BYTES;

/** Start offsets of the three samples of content of `size` bytes (size >= SAMPLED_FROM). */
export function sampleOffsets(size: number): readonly [number, number, number] {
  return [0, Math.floor((size - SAMPLE_BYTES) / 2), size - SAMPLE_BYTES];
}

/** Writes `size` as an unsigned 64-bit little-endian integer (exact up to 2^53). */
export function writeSizePrefix(buffer: Uint8Array, size: number): void {
  // Byte by byte, not DataView + BigInt: this runs once per ID and is a third of the cost of
  // a 1 KiB in-memory ID otherwise.
  const high = Math.floor(size / 0x1_0000_0000);
  buffer[0] = size & 0xff;
  buffer[1] = (size >>> 8) & 0xff;
  buffer[2] = (size >>> 16) & 0xff;
  buffer[3] = (size >>> 24) & 0xff;
  buffer[4] = high & 0xff;
  buffer[5] = (high >>> 8) & 0xff;
  buffer[6] = (high >>> 16) & 0xff;
  buffer[7] = (high >>> 24) & 0xff;
}

/** Fills `buffer` with the hash input of in-memory `bytes`; returns its length. */
export function sampleBytes(bytes: Uint8Array, buffer: Uint8Array): number {
  const size = bytes.byteLength;
  writeSizePrefix(buffer, size);
  if (size < SAMPLED_FROM) {
    buffer.set(bytes, PREFIX_BYTES);
    return PREFIX_BYTES + size;
  }
  sampleOffsets(size).forEach((start, index) => {
    buffer.set(bytes.subarray(start, start + SAMPLE_BYTES), PREFIX_BYTES + index * SAMPLE_BYTES);
  });
  return MAX_INPUT_BYTES;
}

/**
 * Fills `buffer` with the hash input of a `Blob` or `File`; returns its length. Below
 * {@link SAMPLED_FROM} the whole blob is read; from it on, the three samples are read at once, as
 * `slice()`s, whatever the size. The core and the browser entry both sample blobs here. A read
 * that fails rejects with the blob's own error: each caller wraps it.
 */
export async function readBlobSamples(blob: Blob, buffer: Uint8Array): Promise<number> {
  const size = blob.size;
  if (size < SAMPLED_FROM) return sampleBytes(new Uint8Array(await blob.arrayBuffer()), buffer);
  const samples = await Promise.all(sampleOffsets(size).map((start) => blob.slice(start, start + SAMPLE_BYTES).arrayBuffer()));
  writeSizePrefix(buffer, size);
  samples.forEach((sample, index) => buffer.set(new Uint8Array(sample), PREFIX_BYTES + index * SAMPLE_BYTES));
  return MAX_INPUT_BYTES;
}

/** One step of reading a file: its size, or one positional read into the buffer. */
export type FileOp =
  | { readonly kind: "size" }
  | { readonly kind: "read"; readonly offset: number; readonly length: number; readonly position: number };

type Read = { readonly offset: number; readonly length: number; readonly position: number; readonly need: number };
type Plan<T> = Generator<FileOp[], T, number[]>;

const toOp = (read: Read, done = 0): FileOp => ({
  kind: "read",
  offset: read.offset + done,
  length: read.length - done,
  position: read.position + done,
});

/**
 * The file-reading plan, written once for the sync and async drivers. Each `yield` hands over
 * a batch of independent operations (the async driver runs them at once: the whole ID is two
 * waits on the thread pool after `open`) and receives their results: the size for `size`, the
 * bytes one read call returned for `read`. Returns the hash-input length.
 *
 * A file that shrinks or grows while it is read is a {@link MediaSizeMismatchError}: reads ask
 * one byte past the end they expect, so growth shows without another `fstat`.
 */
export function* planFileSample(buffer: Uint8Array, source: string): Plan<number> {
  const head: Read = { offset: PREFIX_BYTES, length: HEAD_READ_BYTES, position: 0, need: HEAD_READ_BYTES };
  const [size = 0, first = 0] = yield [{ kind: "size" }, toOp(head)];
  writeSizePrefix(buffer, size);
  const headNeed = Math.min(size, HEAD_READ_BYTES);
  const [headBytes = 0] = yield* topUp([{ ...head, need: headNeed }], [first]);
  if (headBytes !== headNeed) throw changedWhileReading(source, size, headBytes);
  if (size < SAMPLED_FROM) return PREFIX_BYTES + size;

  const [, middle, tail] = sampleOffsets(size);
  const reads: Read[] = [];
  // Samples the head read already holds are moved inside the buffer, not read again. The
  // middle one goes first: its target never overlaps the tail's source (tail >= 2048).
  if (middle + SAMPLE_BYTES <= headBytes) {
    buffer.copyWithin(PREFIX_BYTES + SAMPLE_BYTES, PREFIX_BYTES + middle, PREFIX_BYTES + middle + SAMPLE_BYTES);
  } else {
    reads.push({ offset: PREFIX_BYTES + SAMPLE_BYTES, length: SAMPLE_BYTES, position: middle, need: SAMPLE_BYTES });
  }
  // Only a head read that met the end of the file (size < its length) proves the tail final.
  if (size < HEAD_READ_BYTES) {
    buffer.copyWithin(PREFIX_BYTES + 2 * SAMPLE_BYTES, PREFIX_BYTES + tail, PREFIX_BYTES + size);
  } else {
    const offset = PREFIX_BYTES + 2 * SAMPLE_BYTES;
    reads.push({ offset, length: SAMPLE_BYTES + 1, position: tail, need: SAMPLE_BYTES });
  }
  const got = yield* topUp(reads, reads.map(() => -1));
  reads.forEach((read, index) => {
    const bytes = got[index] ?? 0;
    if (bytes !== SAMPLE_BYTES) throw changedWhileReading(source, size, read.position + bytes);
  });
  return MAX_INPUT_BYTES;
}

/**
 * Reads until each request holds `need` bytes or meets the end of the file (a read of 0):
 * a read may return fewer bytes than asked. `got[i] = -1` means not read yet.
 */
function* topUp(reads: Read[], got: number[]): Plan<number[]> {
  const total = got.map((bytes) => Math.max(bytes, 0));
  const ended = got.map((bytes) => bytes === 0);
  for (;;) {
    const pending = reads.flatMap((read, index) =>
      !ended[index] && (total[index] ?? 0) < read.need ? [index] : [],
    );
    if (pending.length === 0) return total;
    const results = yield pending.map((index) => toOp(reads[index] as Read, total[index]));
    pending.forEach((index, k) => {
      const bytes = results[k] ?? 0;
      if (bytes === 0) ended[index] = true;
      total[index] = (total[index] ?? 0) + bytes;
    });
  }
}

function changedWhileReading(source: string, size: number, seen: number): MediaSizeMismatchError {
  return new MediaSizeMismatchError(source, size, seen, "the file changed size while it was being read");
}

/**
 * Collects the samples of a stream of declared `size` chunk by chunk, in O(1) memory.
 * `push` throws as soon as the stream is longer than declared; `finish` when it is shorter.
 */
export class StreamSampler {
  readonly #buffer: Uint8Array;
  readonly #size: number;
  readonly #source: string;
  /** [start in content, length, start in buffer] of each window. */
  readonly #windows: ReadonlyArray<readonly [number, number, number]>;
  #seen = 0;

  constructor(buffer: Uint8Array, size: number, source: string) {
    this.#buffer = buffer;
    this.#size = size;
    this.#source = source;
    writeSizePrefix(buffer, size);
    this.#windows =
      size < SAMPLED_FROM
        ? [[0, size, PREFIX_BYTES]]
        : sampleOffsets(size).map((start, index) => [start, SAMPLE_BYTES, PREFIX_BYTES + index * SAMPLE_BYTES] as const);
  }

  push(chunk: Uint8Array): void {
    const chunkStart = this.#seen;
    const chunkEnd = chunkStart + chunk.byteLength;
    if (chunkEnd > this.#size) {
      throw new MediaSizeMismatchError(this.#source, this.#size, chunkEnd, "the stream is longer than its declared size");
    }
    for (const [start, length, target] of this.#windows) {
      const from = Math.max(start, chunkStart);
      const to = Math.min(start + length, chunkEnd);
      if (from < to) this.#buffer.set(chunk.subarray(from - chunkStart, to - chunkStart), target + (from - start));
    }
    this.#seen = chunkEnd;
  }

  /** Returns the hash-input length once the whole declared size has been seen. */
  finish(): number {
    if (this.#seen !== this.#size) {
      throw new MediaSizeMismatchError(this.#source, this.#size, this.#seen, "the stream ended before its declared size");
    }
    return this.#size < SAMPLED_FROM ? PREFIX_BYTES + this.#size : MAX_INPUT_BYTES;
  }
}
