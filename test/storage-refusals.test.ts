// What storeMedia refuses, keeping nothing: an unsupported name (before reading a byte), one byte
// over maxBytes, content that is not what its extension says (and with verify "warn", kept with a
// warning), an empty upload, options out of range, a directory it may not write.
import { execFile } from "node:child_process";
import { chmod, mkdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { MediaContentMismatchError, MediaTooLargeError, MediaType, storeMedia, UnsupportedMediaTypeError } from "../src/index.ts";
import { chunksOf, png, useStorageRoot } from "./helpers/storage.ts";

const run = promisify(execFile);
const fixture = useStorageRoot();
const { filesLeft } = fixture;

describe("storeMedia", () => {
  it("refuses an unsupported name before creating anything", async () => {
    let pulled = false;
    const source = (async function* () {
      pulled = true;
      yield png;
    })();
    await expect(storeMedia(source, { originalName: "notes.txt", directories: fixture.directories })).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    expect(pulled).toBe(false);
    await expect(stat(fixture.directories.imagesDir)).rejects.toThrow(/ENOENT/);
  });

  it("refuses one byte over maxBytes, never truncating, and accepts exactly maxBytes", async () => {
    const error = await storeMedia(Readable.from(chunksOf(png, 100)), { originalName: "a.png", directories: fixture.directories, maxBytes: png.length - 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MediaTooLargeError);
    expect(error).toMatchObject({ code: "MEDIA_TOO_LARGE", maxBytes: png.length - 1 });
    expect(await filesLeft()).toEqual([]);
    const stored = await storeMedia(Readable.from(chunksOf(png, 100)), { originalName: "a.png", directories: fixture.directories, maxBytes: png.length });
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
    await expect(storeMedia(endless, { originalName: "a.png", directories: fixture.directories, maxBytes: 1 << 20 })).rejects.toBeInstanceOf(MediaTooLargeError);
    expect(pulled).toBeLessThan(20);
    expect(await filesLeft()).toEqual([]);
  });

  it("an empty upload is no image; with verify off it is stored under the empty-content ID", async () => {
    await expect(storeMedia(new Uint8Array(0), { originalName: "empty.png", directories: fixture.directories })).rejects.toBeInstanceOf(MediaContentMismatchError);
    expect(await filesLeft()).toEqual([]);
    const stored = await storeMedia(new Uint8Array(0), { originalName: "empty.png", directories: fixture.directories, verify: "off" });
    expect(stored).toMatchObject({ id: "34c96acdcadb1bbb", size: 0, detected: undefined });
  });

  it("refuses an extension that lies about the content, keeping nothing", async () => {
    const error = await storeMedia(sampleMp4(100_000), { originalName: "cat.jpg", directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaContentMismatchError);
    expect((error as Error).message).toBe('Checking the content of "cat.jpg": the name says Image (.jpg), the bytes are video/mp4');
    expect(await filesLeft()).toEqual([]);
  });

  it("refuses an image of another format than its extension says, and accepts formats of one family", async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]), Buffer.alloc(200)]);
    const error = await storeMedia(jpeg, { originalName: "photo.png", directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaContentMismatchError);
    expect((error as Error).message).toBe('Checking the content of "photo.png": the name says Image (.png), the bytes are image/jpeg');
    expect(await filesLeft()).toEqual([]);
    expect(await storeMedia(jpeg, { originalName: "photo.JPEG", directories: fixture.directories })).toMatchObject({ created: true });
    // An ISO-BMFF file may be named .mp4, .mov, .m4v or .3gp.
    expect(await storeMedia(sampleMp4(10_000, 1), { originalName: "clip.mov", directories: fixture.directories })).toMatchObject({ created: true });
  });

  it("with verify warn, keeps a lying file, returns what it is and emits a warning", async () => {
    const warnings = vi.fn();
    process.on("warning", warnings);
    try {
      const stored = await storeMedia(sampleMp4(10_000), { originalName: "cat.jpg", directories: fixture.directories, verify: "warn" });
      expect(stored).toMatchObject({ mediaType: MediaType.Image, detected: { mediaType: MediaType.Video, mime: "video/mp4" } });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveBeenCalledWith(expect.objectContaining({ code: "MEDIA_INTAKE_CONTENT_MISMATCH" }));
    } finally {
      process.off("warning", warnings);
    }
  });

  it("validates options when given, naming the option", async () => {
    await expect(storeMedia(png, { originalName: "a.png", directories: fixture.directories, maxBytes: -1 })).rejects.toThrow(
      "storeMedia: expected `maxBytes` to be an integer of at least 1 byte, got -1.",
    );
    await expect(storeMedia(png, { originalName: "a.png", directories: fixture.directories, verify: "maybe" as "off" })).rejects.toThrow(/`verify`/);
    await expect(storeMedia(png, { originalName: "", directories: fixture.directories })).rejects.toThrow(/`originalName`/);
    await expect(storeMedia(png, { originalName: "a.png", directories: { videosDir: "", imagesDir: fixture.root } })).rejects.toThrow(
      /`directories.videosDir`/,
    );
  });

  it("a read-only directory is a MediaWriteError and leaves nothing", async () => {
    await chmod(fixture.root, 0o755);
    await mkdir(fixture.directories.imagesDir, { mode: 0o555 });
    await chmod(fixture.directories.imagesDir, 0o555);
    const script = `
      import { storeMedia } from ${JSON.stringify(resolve(import.meta.dirname, "../src/index.ts"))};
      const directories = ${JSON.stringify(fixture.directories)};
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
    expect(result.message).toBe(`Writing ${fixture.directories.imagesDir}: permission denied (EACCES)`);
    expect(await filesLeft()).toEqual([]);
  });
});
