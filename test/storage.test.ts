import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  computeMediaId,
  InvalidMediaIdError,
  MediaContentMismatchError,
  MediaIdCollisionError,
  MediaReadError,
  MediaTooLargeError,
  MediaType,
  planStoragePath,
  type StorageDirectories,
  StoragePathEscapeError,
  storeMedia,
  sweepPartials,
  UnsupportedMediaTypeError,
} from "../src/index.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const run = promisify(execFile);
let root: string;
let directories: StorageDirectories;

beforeEach(async () => {
  root = await makeTempDir();
  directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
});

/** Every file under the storage root, relative to it. */
const filesLeft = () => filesUnder(root);

function chunksOf(bytes: Uint8Array, size = 65536): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

describe("planStoragePath", () => {
  const id = "6A9B7CE7844AA871";

  it("puts <id><lowercased ext> in the type's directory", async () => {
    expect(await planStoragePath({ id, originalName: "clip.MP4", mediaType: MediaType.Video, directories })).toBe(
      join(root, "videos", "6a9b7ce7844aa871.mp4"),
    );
    expect(await planStoragePath({ id, originalName: "x.JPeG", mediaType: MediaType.Image, directories })).toBe(
      join(root, "images", "6a9b7ce7844aa871.jpeg"),
    );
  });

  it("resolves relative directories to absolute ones", async () => {
    const path = await planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories: { videosDir: "v", imagesDir: "i" } });
    expect(path).toBe(resolve("i", "6a9b7ce7844aa871.png"));
  });

  it("accepts a custom name inside the directory, sub-directories included", async () => {
    const naming = ({ id, extension }: { id: string; extension: string }) => `${id.slice(0, 2)}/${id}${extension}`;
    expect(await planStoragePath({ id, originalName: "a.mov", mediaType: MediaType.Video, directories, naming })).toBe(
      join(root, "videos", "6a", "6a9b7ce7844aa871.mov"),
    );
  });

  it.each([
    ["../../x.png", '".." segment'],
    ["/etc/x.png", "absolute path"],
    ["a/../../b.jpg", '".." segment'],
    ["a\0.png", "NUL byte"],
    ["", "non-empty relative path"],
    ["C:\\x.png", "absolute path"],
  ])("rejects a name that escapes the directory: %j", async (name, reason) => {
    const error = await planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories, naming: () => name }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoragePathEscapeError);
    expect((error as Error).message).toContain(reason);
  });

  it("rejects a name that escapes through a symlink", async () => {
    const outside = join(root, "outside");
    await mkdir(outside, { recursive: true });
    await mkdir(directories.imagesDir, { recursive: true });
    await symlink(outside, join(directories.imagesDir, "link"));
    await expect(
      planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories, naming: () => "link/x.png" }),
    ).rejects.toThrow(/a symlink leads outside the directory/);
  });

  it("refuses a virtual ID: it is never stored", async () => {
    await expect(planStoragePath({ id: `V${id}`, originalName: "a.png", mediaType: MediaType.Image, directories })).rejects.toBeInstanceOf(
      InvalidMediaIdError,
    );
  });
});

describe("storeMedia", () => {
  const png = samplePng(64, 48, 3);

  it.each([
    ["a Node Readable", () => Readable.from(chunksOf(png, 1000))],
    ["a web ReadableStream", () => Readable.toWeb(Readable.from(chunksOf(png, 1000))) as ReadableStream<Uint8Array>],
    ["an async iterable", () => (async function* () { yield* chunksOf(png, 777); })()],
    ["a Buffer", () => png],
  ])("stores %s at <imagesDir>/<id>.png with the right fields", async (_, source) => {
    const stored = await storeMedia(source(), { originalName: "Holiday Photo.PNG", directories });
    const id = await computeMediaId(png);
    expect(stored).toEqual({
      id,
      mediaType: MediaType.Image,
      detected: { mediaType: MediaType.Image, mime: "image/png", extension: ".png" },
      path: join(root, "images", `${id}.png`),
      size: png.length,
      name: "Holiday Photo.PNG",
      created: true,
    });
    expect(Object.isFrozen(stored)).toBe(true);
    expect(await readFile(stored.path)).toEqual(png);
    expect(await filesLeft()).toEqual([`images/${id}.png`]);
  });

  it("a Node stream's chunks of any size, over many write batches, land byte for byte", async () => {
    const mp4 = sampleMp4(3 << 20);
    // Sizes from 1 byte to 600 KiB, in an order that crosses every batch boundary differently.
    const chunks: Buffer[] = [];
    for (let offset = 0, i = 0; offset < mp4.length; i += 1) {
      const size = Math.min(mp4.length - offset, [1, 7, 65_536, 600 << 10, 262_143, 262_145, 3][i % 7]!);
      chunks.push(Buffer.from(mp4.subarray(offset, offset + size)));
      offset += size;
    }
    const stored = await storeMedia(Readable.from(chunks), { originalName: "clip.mp4", directories });
    expect(stored.size).toBe(mp4.length);
    expect(await readFile(stored.path)).toEqual(Buffer.from(mp4));
  });

  it("an iterable that refills one buffer between yields stores each yield's bytes (its chunks are copied)", async () => {
    const mp4 = sampleMp4(1 << 20);
    const reused = Buffer.alloc(100_000);
    async function* refilling() {
      for (let offset = 0; offset < mp4.length; offset += reused.length) {
        const length = Math.min(reused.length, mp4.length - offset);
        reused.set(mp4.subarray(offset, offset + length));
        yield reused.subarray(0, length);
      }
    }
    const stored = await storeMedia(refilling(), { originalName: "clip.mp4", directories });
    expect(await readFile(stored.path)).toEqual(Buffer.from(mp4));
  });

  it("copies in an existing file given by path", async () => {
    const source = join(root, "upload.mp4");
    const mp4 = sampleMp4(3 << 20);
    await writeFile(source, mp4);
    const stored = await storeMedia(source, { originalName: "upload.mp4", directories });
    expect(stored.mediaType).toBe(MediaType.Video);
    expect(stored.path).toBe(join(root, "videos", `${await computeMediaId(mp4)}.mp4`));
    expect(await readFile(stored.path)).toEqual(mp4);
  });

  it("refuses an unsupported name before creating anything", async () => {
    let pulled = false;
    const source = (async function* () {
      pulled = true;
      yield png;
    })();
    await expect(storeMedia(source, { originalName: "notes.txt", directories })).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    expect(pulled).toBe(false);
    await expect(stat(directories.imagesDir)).rejects.toThrow(/ENOENT/);
  });

  it("refuses a missing source file with a MediaReadError", async () => {
    const missing = join(root, "nope.png");
    const error = await storeMedia(missing, { originalName: "nope.png", directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaReadError);
    expect((error as Error).message).toBe(`Reading ${missing}: no such file (ENOENT)`);
    expect(await filesLeft()).toEqual([]);
  });

  it("aborted mid-stream: rejects with the reason and leaves nothing", async () => {
    const controller = new AbortController();
    const reason = new Error("client disconnected");
    const source = new Readable({ read() {} });
    source.push(png);
    source.push(new Uint8Array(3 << 20));
    const pending = storeMedia(source, { originalName: "a.png", directories, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 30);
    await expect(pending).rejects.toBe(reason);
    expect(await filesLeft()).toEqual([]);
  });

  it("a stream error mid-way: rejects with that very error and leaves nothing", async () => {
    const failure = new Error("socket hang up");
    const source = (async function* () {
      yield png;
      yield new Uint8Array(2 << 20);
      throw failure;
    })();
    await expect(storeMedia(source, { originalName: "a.png", directories })).rejects.toBe(failure);
    expect(await filesLeft()).toEqual([]);
  });

  it("refuses one byte over maxBytes, never truncating, and accepts exactly maxBytes", async () => {
    const error = await storeMedia(Readable.from(chunksOf(png, 100)), { originalName: "a.png", directories, maxBytes: png.length - 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MediaTooLargeError);
    expect(error).toMatchObject({ code: "MEDIA_TOO_LARGE", maxBytes: png.length - 1 });
    expect(await filesLeft()).toEqual([]);
    const stored = await storeMedia(Readable.from(chunksOf(png, 100)), { originalName: "a.png", directories, maxBytes: png.length });
    expect(stored.size).toBe(png.length);
  });

  it("stops reading a too-large stream as soon as it passes the limit", async () => {
    let pulled = 0;
    const endless = (async function* () {
      for (;;) {
        pulled++;
        yield pulled === 1 ? samplePng() : new Uint8Array(65536);
      }
    })();
    await expect(storeMedia(endless, { originalName: "a.png", directories, maxBytes: 1 << 20 })).rejects.toBeInstanceOf(MediaTooLargeError);
    expect(pulled).toBeLessThan(20);
    expect(await filesLeft()).toEqual([]);
  });

  it("an empty upload is no image; with verify off it is stored under the empty-content ID", async () => {
    await expect(storeMedia(new Uint8Array(0), { originalName: "empty.png", directories })).rejects.toBeInstanceOf(MediaContentMismatchError);
    expect(await filesLeft()).toEqual([]);
    const stored = await storeMedia(new Uint8Array(0), { originalName: "empty.png", directories, verify: "off" });
    expect(stored).toMatchObject({ id: "34c96acdcadb1bbb", size: 0, detected: undefined });
  });

  it("refuses an extension that lies about the content, keeping nothing", async () => {
    const error = await storeMedia(sampleMp4(100_000), { originalName: "cat.jpg", directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaContentMismatchError);
    expect((error as Error).message).toBe('Checking the content of "cat.jpg": the name says Image (.jpg), the bytes are video/mp4');
    expect(await filesLeft()).toEqual([]);
  });

  it("refuses an image of another format than its extension says, and accepts formats of one family", async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]), Buffer.alloc(200)]);
    const error = await storeMedia(jpeg, { originalName: "photo.png", directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaContentMismatchError);
    expect((error as Error).message).toBe('Checking the content of "photo.png": the name says Image (.png), the bytes are image/jpeg');
    expect(await filesLeft()).toEqual([]);
    expect(await storeMedia(jpeg, { originalName: "photo.JPEG", directories })).toMatchObject({ created: true });
    // An ISO-BMFF file may be named .mp4, .mov, .m4v or .3gp.
    expect(await storeMedia(sampleMp4(10_000, 1), { originalName: "clip.mov", directories })).toMatchObject({ created: true });
  });

  it("with verify warn, keeps a lying file, returns what it is and emits a warning", async () => {
    const warnings = vi.fn();
    process.on("warning", warnings);
    try {
      const stored = await storeMedia(sampleMp4(10_000), { originalName: "cat.jpg", directories, verify: "warn" });
      expect(stored).toMatchObject({ mediaType: MediaType.Image, detected: { mediaType: MediaType.Video, mime: "video/mp4" } });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveBeenCalledWith(expect.objectContaining({ code: "MEDIA_INTAKE_CONTENT_MISMATCH" }));
    } finally {
      process.off("warning", warnings);
    }
  });

  it("a naming function that escapes fails the store and leaves nothing", async () => {
    for (const name of ["../../x.png", "/etc/x.png", "a/../../b.jpg", "x\0.png"]) {
      await expect(storeMedia(png, { originalName: "a.png", directories, naming: () => name })).rejects.toBeInstanceOf(StoragePathEscapeError);
    }
    expect(await filesLeft()).toEqual([]);
  });

  it("never lets the upload name into the path", async () => {
    const stored = await storeMedia(png, { originalName: "../../../etc/passwd.png", directories });
    expect(stored.path.startsWith(join(root, "images"))).toBe(true);
    expect(stored.name).toBe("passwd.png");
  });

  it("handles names of 300 characters and with emoji", async () => {
    const stored = await storeMedia(png, { originalName: `${"x".repeat(296)}.png`, directories });
    expect([...stored.name]).toHaveLength(255);
    const emoji = await storeMedia(samplePng(10, 10, 9), { originalName: "🐈 кот.PNG", directories });
    expect(emoji).toMatchObject({ name: "🐈 кот.PNG", created: true });
    expect(emoji.path.endsWith(".png")).toBe(true);
  });

  it("a re-upload of the same bytes keeps the stored file and says created: false", async () => {
    const first = await storeMedia(png, { originalName: "a.png", directories });
    const before = await stat(first.path);
    const second = await storeMedia(Readable.from(chunksOf(png, 10)), { originalName: "b.PNG", directories });
    expect(second).toMatchObject({ id: first.id, path: first.path, created: false, name: "b.PNG" });
    const after = await stat(first.path);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(await filesLeft()).toEqual([relative(root, first.path)]);
  });

  it("different bytes under the same ID: MediaIdCollisionError, nothing overwritten, nothing left", async () => {
    // Same size, same three samples, different bytes outside them: the same media ID.
    const a = Buffer.concat([samplePng(64, 48, 5), Buffer.alloc(20_000, 1)]);
    const b = Buffer.from(a);
    b[2500] = (b[2500] ?? 0) ^ 0xff;
    expect(await computeMediaId(b)).toBe(await computeMediaId(a));
    const first = await storeMedia(a, { originalName: "a.png", directories });
    const error = await storeMedia(b, { originalName: "b.png", directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaIdCollisionError);
    expect(error).toMatchObject({ id: first.id, path: first.path });
    expect(await readFile(first.path)).toEqual(a);
    expect(await filesLeft()).toEqual([relative(root, first.path)]);
  });

  it("20 concurrent stores of the same content end with one complete file and no error", async () => {
    const mp4 = sampleMp4(2 << 20, 7);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => storeMedia(Readable.from(chunksOf(mp4, 65536 + i)), { originalName: `clip-${i}.mp4`, directories })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    expect(await readFile(results[0]!.path)).toEqual(mp4);
    expect(await filesLeft()).toEqual([relative(root, results[0]!.path)]);
  });

  it("reports progress as bytes are written; a throw in onProgress fails the store", async () => {
    const mp4 = sampleMp4(3 << 20);
    const seen: number[] = [];
    await storeMedia(Readable.from(chunksOf(mp4)), { originalName: "a.mp4", directories, onProgress: (p) => seen.push(p.bytesWritten) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen.at(-1)).toBe(mp4.length);
    const stop = new Error("quota reached");
    await expect(
      storeMedia(Readable.from(chunksOf(sampleMp4(3 << 20, 1))), {
        originalName: "b.mp4",
        directories,
        onProgress: () => {
          throw stop;
        },
      }),
    ).rejects.toBe(stop);
    expect((await filesLeft()).filter((f) => f.endsWith(".partial"))).toEqual([]);
  });

  it("beforePlace sees the ID and path before the file is there; a throw keeps nothing", async () => {
    const seen: Array<{ id: string; path: string; existed: boolean }> = [];
    const stored = await storeMedia(png, {
      originalName: "a.png",
      directories,
      beforePlace: async ({ id, path }) => {
        seen.push({ id, path, existed: await stat(path).then(() => true, () => false) });
      },
    });
    expect(seen).toEqual([{ id: stored.id, path: stored.path, existed: false }]);
    const veto = new Error("quota");
    await expect(
      storeMedia(samplePng(9, 9, 9), { originalName: "b.png", directories, beforePlace: () => { throw veto; } }),
    ).rejects.toBe(veto);
    expect(await filesLeft()).toEqual([relative(root, stored.path)]);
  });

  it("fsync: true stores the same file", async () => {
    const stored = await storeMedia(png, { originalName: "a.png", directories, fsync: true });
    expect(await readFile(stored.path)).toEqual(png);
  });

  it("validates options when given, naming the option", async () => {
    await expect(storeMedia(png, { originalName: "a.png", directories, maxBytes: -1 })).rejects.toThrow(
      "storeMedia: expected `maxBytes` to be an integer of at least 1 byte, got -1.",
    );
    await expect(storeMedia(png, { originalName: "a.png", directories, verify: "maybe" as "off" })).rejects.toThrow(/`verify`/);
    await expect(storeMedia(png, { originalName: "", directories })).rejects.toThrow(/`originalName`/);
    await expect(storeMedia(png, { originalName: "a.png", directories: { videosDir: "", imagesDir: root } })).rejects.toThrow(
      /`directories.videosDir`/,
    );
  });

  it("a read-only directory is a MediaWriteError and leaves nothing", async () => {
    await chmod(root, 0o755);
    await mkdir(directories.imagesDir, { mode: 0o555 });
    await chmod(directories.imagesDir, 0o555);
    const script = `
      import { storeMedia } from ${JSON.stringify(resolve(import.meta.dirname, "../src/index.ts"))};
      const directories = ${JSON.stringify(directories)};
      try { await storeMedia(new Uint8Array(${JSON.stringify([...png])}), { originalName: "a.png", directories }); console.log("stored"); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`;
    // As root, permissions do not apply: the store runs as root without the capability that
    // overrides them (setpriv, util-linux), so the clone may sit in a directory only root can
    // enter (another user could not read it).
    const node = [process.execPath, "--input-type=module", "-e", script];
    const [command, ...args] = process.getuid?.() === 0 ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", ...node] : node;
    const { stdout } = await run(command as string, args);
    const result = JSON.parse(stdout) as { name: string; code: string; message: string };
    expect(result).toMatchObject({ name: "MediaWriteError", code: "MEDIA_WRITE_FAILED" });
    expect(result.message).toBe(`Writing ${directories.imagesDir}: permission denied (EACCES)`);
    expect(await filesLeft()).toEqual([]);
  });
});

describe("sweepPartials", () => {
  it("removes only temp files older than the cut-off", async () => {
    await mkdir(directories.videosDir, { recursive: true });
    await mkdir(directories.imagesDir, { recursive: true });
    const old = join(directories.videosDir, ".0123456789abcdef.partial");
    const fresh = join(directories.imagesDir, ".fedcba9876543210.partial");
    const other = join(directories.imagesDir, "keep.partial");
    for (const path of [old, fresh, other]) await writeFile(path, "x");
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(old, past, past);
    await utimes(other, past, past);
    expect(await sweepPartials(directories, { olderThanMs: 3_600_000 })).toEqual([old]);
    expect(await filesLeft()).toEqual(["images/.fedcba9876543210.partial", "images/keep.partial"]);
  });

  it("is fine with directories that do not exist yet", async () => {
    expect(await sweepPartials(directories)).toEqual([]);
  });
});

describe("storeMedia at the edges of its sources", () => {
  it("a refused raw request is drained, not destroyed: the handler's 413 reaches the client", async () => {
    const { startServer } = await import("./helpers/http-server.ts");
    const server = await startServer((request, response) => {
      storeMedia(request, { originalName: "big.mp4", directories, maxBytes: 64 * 1024, verify: "off" }).then(
        () => response.writeHead(200).end(),
        (error: Error) => response.writeHead(413, { "content-type": "application/json" }).end(JSON.stringify({ code: (error as { code?: string }).code })),
      );
    });
    try {
      const response = await fetch(server.url, { method: "POST", body: new Uint8Array(20 * 2 ** 20) });
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({ code: "MEDIA_TOO_LARGE" });
      expect(await filesLeft()).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("an abort cancels a stalled web stream at once", async () => {
    let cancelled: unknown;
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(samplePng());
      },
      cancel(reason) {
        cancelled = reason ?? "cancelled";
      },
    });
    const controller = new AbortController();
    const reason = new Error("client went away");
    const storing = storeMedia(stalled, { originalName: "a.png", directories, signal: controller.signal });
    await vi.waitFor(async () => expect((await filesLeft()).some((f) => f.endsWith(".partial"))).toBe(true));
    controller.abort(reason);
    await expect(storing).rejects.toBe(reason);
    await vi.waitFor(() => expect(cancelled).toBeDefined());
    expect(await filesLeft()).toEqual([]);
  });

  it("a path source is never opened when the directory cannot be made: no descriptor leaks", async () => {
    const source = join(root, "source.png");
    await writeFile(source, samplePng());
    await writeFile(join(root, "not-a-dir"), "x");
    const blocked = { videosDir: join(root, "not-a-dir", "v"), imagesDir: join(root, "not-a-dir", "i") };
    const { readdir } = await import("node:fs/promises");
    const before = (await readdir("/proc/self/fd")).length;
    for (let i = 0; i < 5; i++) await expect(storeMedia(source, { originalName: "a.png", directories: blocked })).rejects.toMatchObject({ code: "MEDIA_WRITE_FAILED" });
    expect((await readdir("/proc/self/fd")).length).toBe(before);
  });
});
