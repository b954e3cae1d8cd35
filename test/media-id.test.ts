import { mkdir, open, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import {
  computeMediaId,
  computeMediaIdSync,
  computeVirtualMediaId,
  initMediaIdHasher,
  InvalidMediaIdError,
  isMediaId,
  isMediaIntakeError,
  isVirtualMediaId,
  MediaReadError,
  MediaSizeMismatchError,
  normalizeMediaId,
} from "../src/index.ts";
import { content, mod251, type Pattern } from "./helpers/content.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";
import vectors from "./fixtures/media-id-vectors.json" with { type: "json" };
import { specVectors } from "./helpers/spec-vectors.ts";


let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});

async function writeContent(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** Splits bytes into chunks of the given sizes (cycled), as a network stream would. */
function* chunked(bytes: Uint8Array, sizes: number[]): Generator<Uint8Array> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1);
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

describe("computeMediaIdSync before the hasher is loaded", () => {
  it("throws MEDIA_ID_NOT_READY naming the fix", () => {
    expect(() => computeMediaIdSync(new Uint8Array(4))).toThrow(/await initMediaIdHasher\(\)/);
    try {
      computeMediaIdSync(new Uint8Array(4));
    } catch (error) {
      expect(isMediaIntakeError(error, "MEDIA_ID_NOT_READY")).toBe(true);
    }
  });
});

describe("docs/contract.md vectors", () => {
  it.each(specVectors)("size %i gives %s from bytes, file, sync and Blob", async (size, id) => {
    const bytes = mod251(size);
    const path = await writeContent("v.bin", bytes);
    expect(await computeMediaId(bytes)).toBe(id);
    expect(await computeMediaId(path)).toBe(id);
    expect(computeMediaIdSync(path)).toBe(id);
    expect(computeMediaIdSync(bytes)).toBe(id);
    expect(await computeMediaId(new Blob([bytes as Uint8Array<ArrayBuffer>]))).toBe(id);
    expect(await computeMediaId(Readable.from(chunked(bytes, [4096])), { size })).toBe(id);
  });
});

describe("vectors from an independent XXH64 (test/fixtures/media-id-vectors.json)", () => {
  const inMemory = vectors.cases.filter((c) => c.pattern !== "zeros");
  it.each(inMemory)("$pattern, $size bytes", async ({ pattern, size, id }) => {
    const bytes = content(pattern as Pattern, size);
    const path = await writeContent("f.bin", bytes);
    expect(await computeMediaId(bytes)).toBe(id);
    expect(await computeMediaId(path)).toBe(id);
    expect(computeMediaIdSync(path)).toBe(id);
    expect(await computeMediaId(Readable.from(chunked(bytes, [1, 1000, 7, 65536])), { size })).toBe(id);
  });

  const sparse = vectors.cases.filter((c) => c.pattern === "zeros");
  it.each(sparse)("sparse file of $size zero bytes (64-bit size, exact past 4 GiB)", async ({ size, id }) => {
    const path = join(dir, "sparse.bin");
    await writeFile(path, "");
    await truncate(path, size);
    expect(await computeMediaId(path)).toBe(id);
    expect(computeMediaIdSync(path)).toBe(id);
  });
});

describe("every input shape gives the same ID", () => {
  it("bytes, ArrayBuffer, path, file URL, FileHandle, fd, Blob, File, Readable, ReadableStream, async iterable", async () => {
    await initMediaIdHasher();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 12_000 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 5 }),
        async (bytes, chunkSizes) => {
          const size = bytes.length;
          const expected = computeMediaIdSync(bytes);
          const path = await writeContent("p.bin", bytes);
          const handle = await open(path, "r");
          try {
            const ids = [
              await computeMediaId(bytes.slice().buffer),
              await computeMediaId(path),
              await computeMediaId(pathToFileURL(path)),
              await computeMediaId(handle),
              computeMediaIdSync(handle.fd),
              computeMediaIdSync(path),
              await computeMediaId(new Blob([bytes as Uint8Array<ArrayBuffer>])),
              await computeMediaId(new File([bytes as Uint8Array<ArrayBuffer>], "x.png")),
              await computeMediaId(Readable.from(chunked(bytes, chunkSizes)), { size }),
              await computeMediaId(Readable.toWeb(Readable.from(chunked(bytes, chunkSizes))) as ReadableStream<Uint8Array>, { size }),
              await computeMediaId((async function* () { yield* chunked(bytes, chunkSizes); })(), { size }),
            ];
            expect(new Set(ids)).toEqual(new Set([expected]));
          } finally {
            await handle.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("different content of the same size gives different IDs", async () => {
    const a = mod251(5000);
    const b = a.slice();
    b[4999] = (b[4999] ?? 0) ^ 1;
    expect(await computeMediaId(a)).not.toBe(await computeMediaId(b));
  });

  it("virtual IDs are V and the same digits", async () => {
    expect(await computeVirtualMediaId(new Uint8Array(0))).toBe("V34c96acdcadb1bbb");
    const bytes = mod251(3072);
    expect(await computeVirtualMediaId(Readable.from([bytes]), { size: 3072 })).toBe("Vf9062671e8bfb6e1");
  });
});

describe("cost does not grow with the file size", () => {
  async function readsFor(size: number) {
    const path = join(dir, `sparse-${size}.bin`);
    await writeFile(path, "");
    await truncate(path, size);
    const handle = await open(path, "r");
    const reads: Array<{ length: number; position: number }> = [];
    const counting = new Proxy(handle, {
      get(target, key) {
        if (key === "read") {
          return (buffer: Uint8Array, offset: number, length: number, position: number) => {
            reads.push({ length, position });
            return target.read(buffer, offset, length, position);
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      const id = await computeMediaId(counting);
      expect(id).toBe(computeMediaIdSync(path));
    } finally {
      await handle.close();
    }
    return reads;
  }

  it("reads three samples of a 64 GiB sparse file, the same as of a 1 MiB one", async () => {
    const huge = 64 * 2 ** 30;
    const reads = await readsFor(huge);
    expect(reads.map((read) => read.position)).toEqual([0, (huge - 1024) / 2, huge - 1024]);
    const small = await readsFor(2 ** 20);
    expect(small.map((read) => read.length)).toEqual(reads.map((read) => read.length));
    expect(reads.reduce((sum, read) => sum + read.length, 0)).toBeLessThan(6 * 1024);
  });

  it("reads a file below 3 KiB in one call", async () => {
    expect(await readsFor(3071)).toHaveLength(1);
  });
});

describe("files that cannot be read", () => {
  it("a missing file is a MediaReadError naming the path", async () => {
    const path = join(dir, "nope.mp4");
    await expect(computeMediaId(path)).rejects.toThrow(new MediaReadError(path, "no such file (ENOENT)"));
    expect(() => computeMediaIdSync(path)).toThrow(`Reading ${path}: no such file (ENOENT)`);
    await expect(computeMediaId(path)).rejects.toMatchObject({ code: "MEDIA_READ_FAILED", source: path });
  });

  it("a directory is refused as not a file", async () => {
    const sub = join(dir, "folder.mp4");
    await mkdir(sub);
    await expect(computeMediaId(sub)).rejects.toThrow(`Reading ${sub}: is a directory, not a file`);
    expect(() => computeMediaIdSync(sub)).toThrow("is a directory, not a file");
  });

  it("handles non-ASCII and emoji file names", async () => {
    const path = await writeContent("видео 🎬 clip é.mp4", mod251(3072));
    expect(await computeMediaId(path)).toBe("f9062671e8bfb6e1");
    expect(computeMediaIdSync(path)).toBe("f9062671e8bfb6e1");
  });

  it("a file that shrinks while it is read is a MediaSizeMismatchError", async () => {
    const path = await writeContent("shrinks.bin", mod251(100_000));
    const handle = await open(path, "r+");
    // A concurrent writer: the file is cut right after its size was seen.
    const racing = new Proxy(handle, {
      get(target, key) {
        if (key === "stat") {
          return async () => {
            const stats = await target.stat();
            await target.truncate(50_000);
            return stats;
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      const error = await computeMediaId(racing).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaSizeMismatchError);
      expect((error as Error).message).toMatch(/changed size while it was being read \(expected 100000 bytes/);
    } finally {
      await handle.close();
    }
  });

  it("a file that grows while it is read is a MediaSizeMismatchError", async () => {
    const path = await writeContent("grows.bin", mod251(2000));
    const handle = await open(path, "r+");
    // A concurrent writer appends after the size was seen and before the bytes are read.
    let sizeSeen!: () => void;
    const seen = new Promise<void>((resolve) => (sizeSeen = resolve));
    let appended = false;
    const racing = new Proxy(handle, {
      get(target, key) {
        if (key === "stat") return () => target.stat().finally(sizeSeen);
        if (key === "read") {
          return async (buffer: Uint8Array, offset: number, length: number, position: number) => {
            await seen;
            if (!appended) {
              appended = true;
              await target.write(new Uint8Array(10), 0, 10, 2000);
            }
            return target.read(buffer, offset, length, position);
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      await expect(computeMediaId(racing)).rejects.toThrow(
        "the file changed size while it was being read (expected 2000 bytes, got 2010)",
      );
    } finally {
      await handle.close();
    }
  });

  it("a declared size that does not match the file is refused", async () => {
    const path = await writeContent("s.bin", mod251(5000));
    await expect(computeMediaId(path, { size: 4999 })).rejects.toBeInstanceOf(MediaSizeMismatchError);
    await expect(computeMediaId(mod251(10), { size: 11 })).rejects.toBeInstanceOf(MediaSizeMismatchError);
  });
});

describe("streams", () => {
  it("requires a declared size", async () => {
    // @ts-expect-error a stream without `size` does not type-check either
    await expect(computeMediaId(Readable.from([mod251(10)]))).rejects.toThrow("computeMediaId: expected `size` for a stream");
  });

  it("refuses a stream longer than declared as soon as it passes the size", async () => {
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled++;
        yield mod251(1000);
      }
    }
    const error = await computeMediaId(endless(), { size: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaSizeMismatchError);
    expect((error as Error).message).toBe(
      "Reading <stream>: the stream is longer than its declared size (expected 5000 bytes, got 6000)",
    );
    expect(pulled).toBe(6);
  });

  it("refuses a stream shorter than declared", async () => {
    await expect(computeMediaId(Readable.from([mod251(4000)]), { size: 4001 })).rejects.toThrow(
      "Reading <stream>: the stream ended before its declared size (expected 4001 bytes, got 4000)",
    );
  });

  it("reads a web stream that only has getReader (a polyfill or another realm)", async () => {
    const bytes = mod251(1048583);
    const real = Readable.toWeb(Readable.from(chunked(bytes, [65536]))) as ReadableStream<Uint8Array>;
    const readerOnly = { getReader: () => real.getReader() } as unknown as ReadableStream<Uint8Array>;
    expect(await computeMediaId(readerOnly, { size: bytes.length })).toBe("6a9b7ce7844aa871");
  });

  it("refuses text chunks rather than guess an encoding", async () => {
    await expect(computeMediaId(Readable.from(["abc"]), { size: 3 })).rejects.toThrow(/got a string/);
  });

  it("rejects with the abort reason, even while the stream is stalled", async () => {
    const controller = new AbortController();
    const stalled = new Readable({ read() {} });
    stalled.push(mod251(100));
    const pending = computeMediaId(stalled, { size: 10_000, signal: controller.signal });
    const reason = new Error("client went away");
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
    expect(stalled.destroyed).toBe(true);
  });

  it("rejects at once with an already aborted signal", async () => {
    const reason = new Error("stop");
    await expect(computeMediaId(mod251(10), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});

describe("IDs read from outside", () => {
  it("accepts either case and normalises to lowercase", () => {
    expect(normalizeMediaId("6A9B7CE7844AA871")).toBe("6a9b7ce7844aa871");
    expect(isMediaId("6A9B7CE7844AA871")).toBe(true);
    expect(normalizeMediaId("vF9062671E8BFB6E1", { allowVirtual: true })).toBe("Vf9062671e8bfb6e1");
    expect(isVirtualMediaId("Vf9062671e8bfb6e1")).toBe(true);
  });

  it.each(["", "6a9b7ce7844aa87", "6a9b7ce7844aa8711", "6a9b7ce7844aa87g", " 6a9b7ce7844aa871", "../etc/passwd"])(
    "rejects %j with InvalidMediaIdError",
    (value) => {
      expect(() => normalizeMediaId(value)).toThrow(InvalidMediaIdError);
      expect(isMediaId(value)).toBe(false);
    },
  );

  it("rejects a virtual ID unless allowed, and non-strings", () => {
    expect(() => normalizeMediaId("Vf9062671e8bfb6e1")).toThrow(
      'Expected a media ID of 16 hex digits, got "Vf9062671e8bfb6e1" (a virtual ID, V and 16 hex digits, names content held in memory only: it is never stored).',
    );
    expect(() => normalizeMediaId(42)).toThrow('Expected a media ID of 16 hex digits, got "number".');
    expect(() => normalizeMediaId("V42", { allowVirtual: true })).toThrow('Expected a media ID of 16 hex digits (or V and 16 hex digits), got "V42".');
  });
});
