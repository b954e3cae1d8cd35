// The write loops: chunks into a file at a position through two pooled buffers (or gathered
// into one writev), one write in flight, short writes continued.
import { closeSync, fsync as fsyncFd, open as openFd, write as writeFd, writev as writevFd } from "node:fs";
import { open } from "node:fs/promises";
import { isLocalFileSystem } from "../utils/index.ts";
import { WRITE_BATCH_BYTES } from "./io.ts";

/**
 * What the store writes to: a `FileHandle`, or a descriptor opened on the event loop. Each
 * write is one system call and may write fewer bytes than asked (a disk filling up, a network
 * file system): the write loops continue it ({@link writeRest}).
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
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
 * Creates the temp file (`wx+`): on a local file system a bare descriptor, its writes through
 * the thread pool and its close on the event loop (cheaper than a `FileHandle`'s), else a
 * `FileHandle`. The create itself goes to the thread pool: on a disk it waits on the file
 * system's journal (about 0.5 ms on ext4), which would stall every other request.
 */
export async function openTemp(temp: string, directory: string): Promise<WritableFile> {
  if (!isLocalFileSystem(directory)) return open(temp, "wx+");
  const fd = await new Promise<number>((resolve, reject) => openFd(temp, "wx+", (error, opened) => (error ? reject(error) : resolve(opened))));
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

/**
 * Writes `chunks` into `handle` from `position` through two pooled buffers: each full buffer
 * goes out in one positional `write` while the other fills, so reading and writing overlap and
 * memory stays at two buffers. `onChunk` sees each chunk before it is copied (a throw stops
 * the write); resolves to the bytes written, once every one of them is on disk: a short write
 * is continued from the first byte missing, a failed one (ENOSPC) rejects, and what is on disk
 * is then always a true prefix. The handle is the caller's to close.
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
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
    /**
     * With `owned`: whether the source holds more chunks already received (a Node stream's
     * buffer). When it holds none, what is gathered is written at once instead of waiting for a
     * full batch, so that the bytes of a source that stalls are on disk (a tus PATCH whose
     * connection hangs: its resume elsewhere starts from them).
     */
    moreAtHand?: () => boolean;
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
      if (gathered >= WRITE_BATCH_BYTES || hooks.moreAtHand?.() === false) await flush();
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
