// What storeMedia takes in and lands byte for byte: a Node Readable, a web ReadableStream, an
// async iterable, a Buffer or a file's path, in chunks of any size; a source that is missing,
// aborted, failing or stalled mid-way leaves nothing; a refused raw request is drained, not destroyed.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, MediaReadError, MediaType, storeMedia } from "../src/index.ts";
import { chunksOf, png, useStorageRoot } from "./helpers/storage.ts";

const fixture = useStorageRoot();
const { filesLeft } = fixture;

describe("storeMedia", () => {
  it.each([
    ["a Node Readable", () => Readable.from(chunksOf(png, 1000))],
    ["a web ReadableStream", () => Readable.toWeb(Readable.from(chunksOf(png, 1000))) as ReadableStream<Uint8Array>],
    ["an async iterable", () => (async function* () { yield* chunksOf(png, 777); })()],
    ["a Buffer", () => png],
  ])("stores %s at <imagesDir>/<id>.png with the right fields", async (_, source) => {
    const stored = await storeMedia(source(), { originalName: "Holiday Photo.PNG", directories: fixture.directories });
    const id = await computeMediaId(png);
    expect(stored).toEqual({
      id,
      mediaType: MediaType.Image,
      detected: { mediaType: MediaType.Image, mime: "image/png", extension: ".png" },
      path: join(fixture.root, "images", `${id}.png`),
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
    const stored = await storeMedia(Readable.from(chunks), { originalName: "clip.mp4", directories: fixture.directories });
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
    const stored = await storeMedia(refilling(), { originalName: "clip.mp4", directories: fixture.directories });
    expect(await readFile(stored.path)).toEqual(Buffer.from(mp4));
  });

  it("copies in an existing file given by path", async () => {
    const source = join(fixture.root, "upload.mp4");
    const mp4 = sampleMp4(3 << 20);
    await writeFile(source, mp4);
    const stored = await storeMedia(source, { originalName: "upload.mp4", directories: fixture.directories });
    expect(stored.mediaType).toBe(MediaType.Video);
    expect(stored.path).toBe(join(fixture.root, "videos", `${await computeMediaId(mp4)}.mp4`));
    expect(await readFile(stored.path)).toEqual(mp4);
  });

  it("refuses a missing source file with a MediaReadError", async () => {
    const missing = join(fixture.root, "nope.png");
    const error = await storeMedia(missing, { originalName: "nope.png", directories: fixture.directories }).catch((e: unknown) => e);
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
    const pending = storeMedia(source, { originalName: "a.png", directories: fixture.directories, signal: controller.signal });
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
    await expect(storeMedia(source, { originalName: "a.png", directories: fixture.directories })).rejects.toBe(failure);
    expect(await filesLeft()).toEqual([]);
  });
});

describe("storeMedia at the edges of its sources", () => {
  it("a refused raw request is drained, not destroyed: the handler's 413 reaches the client", async () => {
    const { startServer } = await import("./helpers/http-server.ts");
    const server = await startServer((request, response) => {
      storeMedia(request, { originalName: "big.mp4", directories: fixture.directories, maxBytes: 64 * 1024, verify: "off" }).then(
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
    const storing = storeMedia(stalled, { originalName: "a.png", directories: fixture.directories, signal: controller.signal });
    await vi.waitFor(async () => expect((await filesLeft()).some((f) => f.endsWith(".partial"))).toBe(true));
    controller.abort(reason);
    await expect(storing).rejects.toBe(reason);
    await vi.waitFor(() => expect(cancelled).toBeDefined());
    expect(await filesLeft()).toEqual([]);
  });

  it("a path source is never opened when the directory cannot be made: no descriptor leaks", async () => {
    const source = join(fixture.root, "source.png");
    await writeFile(source, samplePng());
    await writeFile(join(fixture.root, "not-a-dir"), "x");
    const blocked = { videosDir: join(fixture.root, "not-a-dir", "v"), imagesDir: join(fixture.root, "not-a-dir", "i") };
    const { readdir } = await import("node:fs/promises");
    const before = (await readdir("/proc/self/fd")).length;
    for (let i = 0; i < 5; i++) await expect(storeMedia(source, { originalName: "a.png", directories: blocked })).rejects.toMatchObject({ code: "MEDIA_WRITE_FAILED" });
    expect((await readdir("/proc/self/fd")).length).toBe(before);
  });
});
