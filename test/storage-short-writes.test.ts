// A write may put fewer bytes on disk than asked (a disk filling up, a network or FUSE file
// system): every write loop of the store continues it from the first byte missing, or fails.
// Never a success for bytes that are not on disk. The short writes are injected into the
// file system calls the store makes (both its FileHandle path and its event-loop descriptors).
import * as fs from "node:fs";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { MediaWriteError, storeMedia } from "../src/index.ts";
import { type WritableFile, writeChunksAt } from "../src/storage/index.ts";
import { lcg } from "./helpers/content.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

/**
 * The faults: each write takes at most `cap` bytes; after `budget` bytes in all, writes take
 * none. `local` decides which handle the store opens (undefined: as the file system says).
 */
const faults = vi.hoisted(() => ({ cap: Number.POSITIVE_INFINITY, budget: Number.POSITIVE_INFINITY, local: undefined as boolean | undefined, shortWrites: 0, byHandle: 0, byDescriptor: 0 }));

/** How many of `asked` bytes the next write takes, by the faults. */
function allowance(asked: number): number {
  const take = Math.max(0, Math.min(asked, faults.cap, faults.budget));
  faults.budget -= take;
  if (take < asked) faults.shortWrites += 1;
  return take;
}

/** The first `length` bytes of `buffers`, as buffers. */
function firstBytes(buffers: readonly NodeJS.ArrayBufferView[], length: number): Uint8Array[] {
  const taken: Uint8Array[] = [];
  for (const buffer of buffers) {
    if (length <= 0) break;
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, Math.min(buffer.byteLength, length));
    taken.push(bytes);
    length -= bytes.byteLength;
  }
  return taken;
}

vi.mock("../src/utils/local-fs.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/utils/local-fs.ts")>();
  return { isLocalFileSystem: (directory: string) => faults.local ?? actual.isLocalFileSystem(directory) };
});

// The FileHandle path (a file system that is not local).
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...actual,
    open: vi.fn(async (...args: Parameters<typeof actual.open>) => shortWriting(await actual.open(...args))),
  };
});

// The event-loop descriptors (a local file system).
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  return {
    ...actual,
    write: vi.fn((fd: number, buffer: Uint8Array, offset: number, length: number, position: number, callback: (error: Error | null, written: number) => void) => {
      faults.byDescriptor += 1;
      const take = allowance(length);
      if (take === 0) return process.nextTick(callback, null, 0);
      actual.write(fd, buffer, offset, take, position, callback);
    }),
    writev: vi.fn((fd: number, buffers: NodeJS.ArrayBufferView[], position: number, callback: (error: Error | null, written: number) => void) => {
      faults.byDescriptor += 1;
      const take = allowance(buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0));
      if (take === 0) return process.nextTick(callback, null, 0);
      actual.writev(fd, firstBytes(buffers, take), position, callback);
    }),
  };
});

/** A FileHandle whose writes (and writev) take what the faults allow, and no more. */
function shortWriting<T extends object>(handle: T): T {
  return new Proxy(handle, {
    get(target, property) {
      const real = Reflect.get(target, property, target) as unknown;
      if (property === "write") {
        return async (buffer: Uint8Array, offset: number, length: number, position: number) => {
          faults.byHandle += 1;
          const take = allowance(length);
          if (take === 0) return { bytesWritten: 0, buffer };
          return (real as (...args: unknown[]) => Promise<unknown>).call(target, buffer, offset, take, position);
        };
      }
      if (property === "writev") {
        return async (buffers: Uint8Array[], position: number) => {
          faults.byHandle += 1;
          const take = allowance(buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0));
          if (take === 0) return { bytesWritten: 0, buffers };
          return (real as (...args: unknown[]) => Promise<unknown>).call(target, firstBytes(buffers, take), position);
        };
      }
      return typeof real === "function" ? real.bind(target) : real;
    },
  });
}

beforeEach(() => {
  Object.assign(faults, { cap: Number.POSITIVE_INFINITY, budget: Number.POSITIVE_INFINITY, local: undefined, shortWrites: 0, byHandle: 0, byDescriptor: 0 });
});

/** `bytes` in chunks of uneven sizes (1 byte to 90 KiB), as a network hands them over. */
function* unevenChunks(bytes: Uint8Array): Generator<Uint8Array> {
  for (let at = 0, i = 0; at < bytes.byteLength; i += 1) {
    const size = [1, 65_536, 7, 92_160, 4096, 33_333][i % 6]!;
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

async function* asAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/** Random-looking content (lcg) as a `.mp4` the content check is told not to look at. */
const data = Buffer.from(lcg(1_300_007));

describe("writeChunksAt (the tus PATCH's write loop) with short writes", () => {
  it.each([
    ["copied chunks (a tus PATCH body)", false],
    ["chunks written as they are (writev)", true],
  ])("continues every short write: %s land where they belong", async (_, owned) => {
    const root = await makeTempDir();
    const path = join(root, "upload");
    // A resumed upload: the first bytes are in already, the PATCH goes on from its offset.
    const offset = 12_345;
    await writeFile(path, data.subarray(0, offset));
    faults.cap = 100_003;
    const handle = await open(path, "r+");
    const ends: number[] = [];
    try {
      const written = await writeChunksAt(handle as WritableFile, asAsync(unevenChunks(data.subarray(offset))), offset, { owned, onWritten: (end) => ends.push(end) });
      expect(written).toBe(data.byteLength - offset);
    } finally {
      await handle.close();
    }
    expect(faults.shortWrites).toBeGreaterThanOrEqual(3);
    expect((await readFile(path)).equals(data)).toBe(true);
    // Progress is only ever told for bytes on disk: the last is the whole.
    expect(ends.at(-1)).toBe(data.byteLength - offset);
  });

  it.each([
    ["copied chunks", false],
    ["chunks written as they are", true],
  ])("fails, never resolves, when a write takes no byte (%s); what is on disk is a true prefix", async (_, owned) => {
    const root = await makeTempDir();
    const path = join(root, "upload");
    await writeFile(path, "");
    faults.cap = 70_001;
    faults.budget = 600_000;
    const handle = await open(path, "r+");
    const ends: number[] = [];
    try {
      const error = await writeChunksAt(handle as WritableFile, asAsync(unevenChunks(data)), 0, { owned, onWritten: (end) => ends.push(end) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/^a write at byte 600000 took no byte of \d+ \(the file system made no progress\)$/);
    } finally {
      await handle.close();
    }
    const kept = await readFile(path);
    expect(kept.byteLength).toBe(600_000);
    expect(kept.equals(data.subarray(0, kept.byteLength))).toBe(true);
    for (const end of ends) expect(end).toBeLessThanOrEqual(600_000);
  });
});

describe.each([
  ["through a FileHandle (a file system that is not local)", false],
  ["through descriptors on the event loop (a local file system)", true],
])("storeMedia with short writes, %s", (_, local) => {
  /** Directories that exist (the first store into a missing one opens its temp file as a FileHandle). */
  async function storage() {
    const root = await makeTempDir();
    const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
    await mkdir(directories.videosDir);
    return { root, directories };
  }

  /** The writes went through the path under test, and only it. */
  function expectPathTaken() {
    expect(local ? faults.byDescriptor : faults.byHandle).toBeGreaterThan(0);
    expect(local ? faults.byHandle : faults.byDescriptor).toBe(0);
  }

  it.each([
    ["bytes (copied)", () => data],
    ["a Node stream (writev)", () => Readable.from(unevenChunks(data))],
    ["an async iterable (copied)", () => asAsync(unevenChunks(data))],
  ])("continues every short write: %s stored exactly", async (_, source) => {
    const { root, directories } = await storage();
    faults.local = local;
    faults.cap = 100_003;
    const progress: number[] = [];
    const stored = await storeMedia(source(), { originalName: "clip.mp4", directories, verify: "off", onProgress: ({ bytesWritten }) => progress.push(bytesWritten) });
    expectPathTaken();
    expect(faults.shortWrites).toBeGreaterThanOrEqual(3);
    expect(stored).toMatchObject({ created: true, size: data.byteLength });
    expect((await readFile(stored.path)).equals(data)).toBe(true);
    expect(progress.at(-1)).toBe(data.byteLength);
    expect(await filesUnder(root)).toEqual([`videos/${stored.id}.mp4`]);
  });

  it.each([
    ["bytes", () => data],
    ["a Node stream", () => Readable.from(unevenChunks(data))],
  ])("fails with MediaWriteError and leaves nothing when a write takes no byte (%s)", async (_, source) => {
    const { root, directories } = await storage();
    faults.local = local;
    faults.cap = 100_003;
    faults.budget = 500_000;
    const error = await storeMedia(source(), { originalName: "clip.mp4", directories, verify: "off" }).catch((e: unknown) => e);
    expectPathTaken();
    expect(error).toBeInstanceOf(MediaWriteError);
    expect((error as Error).message).toMatch(/^Writing clip\.mp4: a write at byte 500000 took no byte of \d+ \(the file system made no progress\)$/);
    expect(await filesUnder(root)).toEqual([]);
  });
});

// The mocks reach the code under test: a guard against a test that passes because nothing was injected.
it("injects into the calls the store makes", () => {
  expect(vi.isMockFunction(fs.write)).toBe(true);
  expect(vi.isMockFunction(fs.writev)).toBe(true);
});
