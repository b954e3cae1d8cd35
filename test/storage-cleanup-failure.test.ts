// A temp file that cannot be removed (a disk error on cleanup) must not hide why the store failed.
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { MediaTooLargeError, storeMedia } from "../src/index.ts";
import { samplePng } from "../examples/sample-media.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...actual,
    rm: vi.fn(async (path: string, options?: object) => {
      if (String(path).endsWith(".partial")) throw Object.assign(new Error("EIO: i/o error, rm"), { code: "EIO" });
      return actual.rm(path, options);
    }),
  };
});

describe("storeMedia cleanup", () => {
  it("rejects with the real cause when its temp file cannot be removed", async () => {
    const root = await makeTempDir();
    const error = await storeMedia(samplePng(), { originalName: "a.png", directories: { videosDir: join(root, "v"), imagesDir: join(root, "i") }, maxBytes: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaTooLargeError);
  });
});
