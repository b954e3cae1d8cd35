// Where a stored file goes and what it is called: planStoragePath (<id><lowercased ext> in the
// type's directory, a custom naming kept inside it), a naming function or an upload name that
// would escape, long and emoji names; and sweepPartials, which removes only stale temp files.
import { mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { InvalidMediaIdError, MediaType, planStoragePath, StoragePathEscapeError, storeMedia, sweepPartials } from "../src/index.ts";
import { png, useStorageRoot } from "./helpers/storage.ts";

const fixture = useStorageRoot();
const { filesLeft } = fixture;

describe("planStoragePath", () => {
  const id = "6A9B7CE7844AA871";

  it("puts <id><lowercased ext> in the type's directory", async () => {
    expect(await planStoragePath({ id, originalName: "clip.MP4", mediaType: MediaType.Video, directories: fixture.directories })).toBe(
      join(fixture.root, "videos", "6a9b7ce7844aa871.mp4"),
    );
    expect(await planStoragePath({ id, originalName: "x.JPeG", mediaType: MediaType.Image, directories: fixture.directories })).toBe(
      join(fixture.root, "images", "6a9b7ce7844aa871.jpeg"),
    );
  });

  it("resolves relative directories to absolute ones", async () => {
    const path = await planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories: { videosDir: "v", imagesDir: "i" } });
    expect(path).toBe(resolve("i", "6a9b7ce7844aa871.png"));
  });

  it("accepts a custom name inside the directory, sub-directories included", async () => {
    const naming = ({ id, extension }: { id: string; extension: string }) => `${id.slice(0, 2)}/${id}${extension}`;
    expect(await planStoragePath({ id, originalName: "a.mov", mediaType: MediaType.Video, directories: fixture.directories, naming })).toBe(
      join(fixture.root, "videos", "6a", "6a9b7ce7844aa871.mov"),
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
    const error = await planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories: fixture.directories, naming: () => name }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoragePathEscapeError);
    expect((error as Error).message).toContain(reason);
  });

  it("rejects a name that escapes through a symlink", async () => {
    const outside = join(fixture.root, "outside");
    await mkdir(outside, { recursive: true });
    await mkdir(fixture.directories.imagesDir, { recursive: true });
    await symlink(outside, join(fixture.directories.imagesDir, "link"));
    await expect(
      planStoragePath({ id, originalName: "a.png", mediaType: MediaType.Image, directories: fixture.directories, naming: () => "link/x.png" }),
    ).rejects.toThrow(/a symlink leads outside the directory/);
  });

  it("refuses a virtual ID: it is never stored", async () => {
    await expect(planStoragePath({ id: `V${id}`, originalName: "a.png", mediaType: MediaType.Image, directories: fixture.directories })).rejects.toBeInstanceOf(
      InvalidMediaIdError,
    );
  });
});

describe("storeMedia", () => {
  it("a naming function that escapes fails the store and leaves nothing", async () => {
    for (const name of ["../../x.png", "/etc/x.png", "a/../../b.jpg", "x\0.png"]) {
      await expect(storeMedia(png, { originalName: "a.png", directories: fixture.directories, naming: () => name })).rejects.toBeInstanceOf(StoragePathEscapeError);
    }
    expect(await filesLeft()).toEqual([]);
  });

  it("never lets the upload name into the path", async () => {
    const stored = await storeMedia(png, { originalName: "../../../etc/passwd.png", directories: fixture.directories });
    expect(stored.path.startsWith(join(fixture.root, "images"))).toBe(true);
    expect(stored.name).toBe("passwd.png");
  });

  it("handles names of 300 characters and with emoji", async () => {
    const stored = await storeMedia(png, { originalName: `${"x".repeat(296)}.png`, directories: fixture.directories });
    expect([...stored.name]).toHaveLength(255);
    const emoji = await storeMedia(samplePng(10, 10, 9), { originalName: "🐈 кот.PNG", directories: fixture.directories });
    expect(emoji).toMatchObject({ name: "🐈 кот.PNG", created: true });
    expect(emoji.path.endsWith(".png")).toBe(true);
  });
});

describe("sweepPartials", () => {
  it("removes only temp files older than the cut-off", async () => {
    await mkdir(fixture.directories.videosDir, { recursive: true });
    await mkdir(fixture.directories.imagesDir, { recursive: true });
    const old = join(fixture.directories.videosDir, ".0123456789abcdef.partial");
    const fresh = join(fixture.directories.imagesDir, ".fedcba9876543210.partial");
    const other = join(fixture.directories.imagesDir, "keep.partial");
    for (const path of [old, fresh, other]) await writeFile(path, "x");
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(old, past, past);
    await utimes(other, past, past);
    expect(await sweepPartials(fixture.directories, { olderThanMs: 3_600_000 })).toEqual([old]);
    expect(await filesLeft()).toEqual(["images/.fedcba9876543210.partial", "images/keep.partial"]);
  });

  it("is fine with directories that do not exist yet", async () => {
    expect(await sweepPartials(fixture.directories)).toEqual([]);
  });
});
