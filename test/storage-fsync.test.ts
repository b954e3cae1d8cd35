// `fsync: true` must put a stored file's data on disk before its name, on every path that stores
// one: the syncs are counted through the file system calls the store makes.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { computeMediaId, storeCompleteFile, storeMedia } from "../src/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

/** Every sync: the path its handle was opened with (a descriptor's own for the event-loop ones), and whether `finalPath` existed then. */
const syncs: Array<{ path: string; placed: boolean }> = [];
const watch = { finalPath: "" };
const descriptors = new Map<number, string>();

function record(path: string): void {
  syncs.push({ path, placed: watch.finalPath !== "" && existsSync(watch.finalPath) });
}

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...actual,
    open: vi.fn(async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      return new Proxy(handle, {
        get(target, property) {
          if (property === "sync" || property === "datasync") {
            return async () => {
              record(String(args[0]));
              return target[property]();
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    }),
  };
});

// On a local file system the store's temp file is a descriptor opened on the event loop.
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  return {
    ...actual,
    openSync: vi.fn((...args: Parameters<typeof actual.openSync>) => {
      const fd = actual.openSync(...args);
      descriptors.set(fd, String(args[0]));
      return fd;
    }),
    fsync: vi.fn((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      record(descriptors.get(fd) ?? `fd ${fd}`);
      actual.fsync(fd, callback);
    }),
  };
});

beforeEach(() => {
  syncs.length = 0;
  watch.finalPath = "";
});

async function setUp() {
  const root = await makeTempDir();
  const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
  const uploads = join(directories.videosDir, ".uploads");
  await mkdir(uploads, { recursive: true });
  return { directories, uploads };
}

describe("storeCompleteFile with fsync", () => {
  it("syncs the file's data before it is linked into place, then its directory", async () => {
    const { directories, uploads } = await setUp();
    const png = samplePng(40, 30, 5);
    const upload = join(uploads, "0123456789abcdef0123456789abcdef");
    await writeFile(upload, png);
    watch.finalPath = join(directories.imagesDir, `${await computeMediaId(png)}.png`);

    const stored = await storeCompleteFile(upload, { originalName: "photo.png", directories, fsync: true });

    expect(stored).toMatchObject({ path: watch.finalPath, created: true, size: png.byteLength });
    expect((await readFile(stored.path)).equals(png)).toBe(true);
    expect(syncs).toEqual([
      { path: upload, placed: false },
      { path: directories.imagesDir, placed: true },
    ]);
  });

  it("syncs nothing without fsync", async () => {
    const { directories, uploads } = await setUp();
    const upload = join(uploads, "fedcba9876543210fedcba9876543210");
    await writeFile(upload, samplePng(20, 20, 6));
    await storeCompleteFile(upload, { originalName: "photo.png", directories });
    expect(syncs).toEqual([]);
  });
});

describe("storeMedia with fsync", () => {
  it("syncs the temp file's data before it is linked into place, then its directory (what storeCompleteFile matches)", async () => {
    const { directories } = await setUp();
    const png = samplePng(40, 30, 7);
    watch.finalPath = join(directories.imagesDir, `${await computeMediaId(png)}.png`);

    await storeMedia(png, { originalName: "photo.png", directories, fsync: true });

    expect(syncs).toHaveLength(2);
    expect(syncs[0]).toMatchObject({ placed: false });
    expect(syncs[0]!.path).toMatch(/\/images\/\.[0-9a-f]{16}\..+\.partial$/);
    expect(syncs[1]).toEqual({ path: directories.imagesDir, placed: true });
  });
});
