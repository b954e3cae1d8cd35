// How storeMedia places a file: once per content (a re-upload keeps the stored file, different
// bytes under the same ID are refused, 20 stores at once make one file), with onProgress,
// beforePlace and fsync.
import { readFile, stat } from "node:fs/promises";
import { relative } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, MediaIdCollisionError, storeMedia } from "../src/index.ts";
import { chunksOf, png, useStorageRoot } from "./helpers/storage.ts";

const fixture = useStorageRoot();
const { filesLeft } = fixture;

describe("storeMedia", () => {
  it("a re-upload of the same bytes keeps the stored file and says created: false", async () => {
    const first = await storeMedia(png, { originalName: "a.png", directories: fixture.directories });
    const before = await stat(first.path);
    const second = await storeMedia(Readable.from(chunksOf(png, 10)), { originalName: "b.PNG", directories: fixture.directories });
    expect(second).toMatchObject({ id: first.id, path: first.path, created: false, name: "b.PNG" });
    const after = await stat(first.path);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(await filesLeft()).toEqual([relative(fixture.root, first.path)]);
  });

  it("different bytes under the same ID: MediaIdCollisionError, nothing overwritten, nothing left", async () => {
    // Same size, same three samples, different bytes outside them: the same media ID.
    const a = Buffer.concat([samplePng(64, 48, 5), Buffer.alloc(20_000, 1)]);
    const b = Buffer.from(a);
    b[2500] = (b[2500] ?? 0) ^ 0xff;
    expect(await computeMediaId(b)).toBe(await computeMediaId(a));
    const first = await storeMedia(a, { originalName: "a.png", directories: fixture.directories });
    const error = await storeMedia(b, { originalName: "b.png", directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaIdCollisionError);
    expect(error).toMatchObject({ id: first.id, path: first.path });
    expect(await readFile(first.path)).toEqual(a);
    expect(await filesLeft()).toEqual([relative(fixture.root, first.path)]);
  });

  it("20 concurrent stores of the same content end with one complete file and no error", async () => {
    const mp4 = sampleMp4(2 << 20, 7);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => storeMedia(Readable.from(chunksOf(mp4, 65536 + i)), { originalName: `clip-${i}.mp4`, directories: fixture.directories })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    expect(await readFile(results[0]!.path)).toEqual(mp4);
    expect(await filesLeft()).toEqual([relative(fixture.root, results[0]!.path)]);
  });

  it("reports progress as bytes are written; a throw in onProgress fails the store", async () => {
    const mp4 = sampleMp4(3 << 20);
    const seen: number[] = [];
    await storeMedia(Readable.from(chunksOf(mp4)), { originalName: "a.mp4", directories: fixture.directories, onProgress: (p) => seen.push(p.bytesWritten) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen.at(-1)).toBe(mp4.length);
    const stop = new Error("quota reached");
    await expect(
      storeMedia(Readable.from(chunksOf(sampleMp4(3 << 20, 1))), {
        originalName: "b.mp4",
        directories: fixture.directories,
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
      directories: fixture.directories,
      beforePlace: async ({ id, path }) => {
        seen.push({ id, path, existed: await stat(path).then(() => true, () => false) });
      },
    });
    expect(seen).toEqual([{ id: stored.id, path: stored.path, existed: false }]);
    const veto = new Error("quota");
    await expect(
      storeMedia(samplePng(9, 9, 9), { originalName: "b.png", directories: fixture.directories, beforePlace: () => { throw veto; } }),
    ).rejects.toBe(veto);
    expect(await filesLeft()).toEqual([relative(fixture.root, stored.path)]);
  });

  it("fsync: true stores the same file", async () => {
    const stored = await storeMedia(png, { originalName: "a.png", directories: fixture.directories, fsync: true });
    expect(await readFile(stored.path)).toEqual(png);
  });
});
