import { writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { createAnnotationsClient, type IntakenMedia } from "../src/index.ts";
import { mediaIntakeStorage } from "../src/multer/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

describe("mediaIntakeStorage._removeFile", () => {
  const engine = mediaIntakeStorage({
    client: createAnnotationsClient({ baseUrl: "http://127.0.0.1:1" }),
    directories: { videosDir: "/tmp/v", imagesDir: "/tmp/i" },
  });
  const remove = (file: { path: string; media: IntakenMedia }) =>
    new Promise<Error | null>((resolve) => engine._removeFile({} as IncomingMessage, file, resolve));

  it("removes a file this request created, and only that", async () => {
    const dir = await makeTempDir();
    const mine = join(dir, "mine.png");
    const theirs = join(dir, "theirs.png");
    await writeFile(mine, "x");
    await writeFile(theirs, "y");
    expect(await remove({ path: mine, media: { fileCreated: true } as IntakenMedia })).toBeNull();
    expect(await remove({ path: theirs, media: { fileCreated: false } as IntakenMedia })).toBeNull();
    await expect(stat(mine)).rejects.toThrow(/ENOENT/);
    expect((await stat(theirs)).isFile()).toBe(true);
  });
});
