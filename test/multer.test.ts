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

  it("keeps the media when a later part of the request fails: its record names the file", async () => {
    const dir = await makeTempDir();
    const mine = join(dir, "mine.png");
    await writeFile(mine, "x");
    expect(await remove({ path: mine, media: { fileCreated: true } as IntakenMedia })).toBeNull();
    expect((await stat(mine)).isFile()).toBe(true);
  });
});
