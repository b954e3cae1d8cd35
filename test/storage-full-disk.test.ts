// A real disk filling up: a 1 MiB tmpfs mounted for this file. On a nearly full disk a write
// puts only what fits on disk and says so (a short write); space freed a moment later must not
// let the next write land past a hole. Every write loop errors with ENOSPC, never succeeds
// for bytes that are not on disk, and a store leaves nothing half-written behind.
// Mounting needs root: where it is impossible these tests fail with the reason (helpers/tmpfs.ts).
import { unlinkSync } from "node:fs";
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { httpErrorFor, MediaWriteError, storeMedia } from "../src/index.ts";
import { writeChunksAt } from "../src/storage/index.ts";
import { lcg } from "./helpers/content.ts";
import { filesUnder } from "./helpers/temp-dir.ts";
import { mountSmallTmpfs, type SmallTmpfs } from "./helpers/tmpfs.ts";

const locality = vi.hoisted(() => ({ local: undefined as boolean | undefined }));

// The store takes a FileHandle on a file system that is not local, descriptors on the event
// loop on a local one: tmpfs is local, so the other path is chosen here.
vi.mock("../src/utils/local-fs.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/utils/local-fs.ts")>();
  return { isLocalFileSystem: (directory: string) => locality.local ?? actual.isLocalFileSystem(directory) };
});

const SIZE = 1 << 20;
let disk: SmallTmpfs;

beforeAll(async () => {
  disk = await mountSmallTmpfs(SIZE);
});

afterAll(async () => {
  await disk?.unmount();
});

beforeEach(() => {
  locality.local = undefined;
});

// The tmpfs is emptied after each test, so each starts with the whole MiB free.
afterEach(async () => {
  if (disk) await rm(join(disk.path, "d"), { recursive: true, force: true });
});

/** A directory on the tmpfs, and a filler file leaving `left` bytes free. */
async function fillUp(left: number): Promise<{ root: string; filler: string }> {
  const root = join(disk.path, "d");
  await mkdir(root, { recursive: true });
  const filler = join(root, "filler");
  await disk.fillUp(filler, left);
  return { root, filler };
}

/** `bytes` in 64 KiB chunks, as a network hands them over. */
async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += 65_536) yield bytes.subarray(at, at + 65_536);
}

/** The ENOSPC under an error (its `cause` chain). */
function systemCode(error: unknown): string | undefined {
  for (let current = error; current; current = (current as Error).cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E")) return code;
  }
  return undefined;
}

const data = Buffer.from(lcg(900_000));

describe.each([
  ["through a FileHandle (a file system that is not local)", false],
  ["through descriptors on the event loop (a local file system)", true],
])("storeMedia on a full disk, %s", (_, local) => {
  it.each([
    ["bytes", () => data],
    ["a Node stream", () => Readable.from(chunksOf(data))],
  ])("fails with ENOSPC (507) and leaves nothing: %s", async (_, source) => {
    const { root, filler } = await fillUp(200 << 10);
    const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
    await mkdir(directories.videosDir);
    locality.local = local;
    const error = await storeMedia(source(), { originalName: "clip.mp4", directories, verify: "off" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaWriteError);
    expect((error as Error).message).toBe("Writing clip.mp4: no space left on the device (ENOSPC)");
    expect(httpErrorFor(error).status).toBe(507);
    expect(await filesUnder(root)).toEqual(["filler"]);
    await rm(filler);
    expect(await disk.free()).toBe(SIZE);
  });

  it("never stores a hole when space is freed after a short write", async () => {
    // 100 KiB free: the first 256 KiB write takes 100 KiB. Space freed as soon as progress is
    // told would let the rest of the upload land after a hole of zeros, and a success. The
    // rest of a short write is written before any progress is told: it meets the full disk.
    const { root, filler } = await fillUp(100 << 10);
    const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
    await mkdir(directories.videosDir);
    locality.local = local;
    const told: number[] = [];
    const outcome = await storeMedia(chunksOf(data), {
      originalName: "clip.mp4",
      directories,
      verify: "off",
      onProgress: ({ bytesWritten }) => {
        if (told.push(bytesWritten) === 1) unlinkSync(filler);
      },
    }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(MediaWriteError);
    expect(systemCode(outcome)).toBe("ENOSPC");
    expect(told).toEqual([]);
    expect(await filesUnder(root)).toEqual(["filler"]);
  });
});

describe("writeChunksAt (the tus PATCH's write loop) on a full disk", () => {
  /** A tus upload's file with its first `offset` bytes in, opened as the PATCH does. */
  async function upload(offset: number, left: number) {
    const { root, filler } = await fillUp(left + offset);
    const path = join(root, "upload");
    await writeFile(path, data.subarray(0, offset));
    return { path, filler, handle: await open(path, "r+") };
  }

  it("fails with ENOSPC; what is on disk is a true prefix, the offset a resume starts from", async () => {
    const offset = 8192;
    const { path, handle } = await upload(offset, 300 << 10);
    const error = await writeChunksAt(handle, chunksOf(data.subarray(offset)), offset).catch((e: unknown) => e).finally(() => handle.close());
    expect(systemCode(error)).toBe("ENOSPC");
    expect(httpErrorFor(error).status).toBe(507);
    const kept = await readFile(path);
    expect(kept.byteLength).toBeGreaterThan(offset);
    expect(kept.byteLength).toBeLessThan(data.byteLength);
    expect(kept.equals(data.subarray(0, kept.byteLength))).toBe(true);
  });

  it("never writes past a hole when space is freed after a short write", async () => {
    const offset = 8192;
    const { path, filler, handle } = await upload(offset, 100 << 10);
    const told: number[] = [];
    const outcome = await writeChunksAt(handle, chunksOf(data.subarray(offset)), offset, {
      onWritten: (end) => {
        if (told.push(end) === 1) unlinkSync(filler);
      },
    })
      .catch((e: unknown) => e)
      .finally(() => handle.close());
    expect(systemCode(outcome)).toBe("ENOSPC");
    expect(told).toEqual([]);
    const kept = await readFile(path);
    expect(kept.byteLength).toBeGreaterThan(offset);
    expect(kept.equals(data.subarray(0, kept.byteLength))).toBe(true);
  });
});
