import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);

it("npm run demo prints the same ID for a copy and a flat cost for a 64 GiB file", async () => {
  const { stdout } = await run(process.execPath, [resolve(import.meta.dirname, "../examples/demo.ts")]);
  const ids = Object.fromEntries(
    [...stdout.matchAll(/^(\S+)\s+\d+\s+([0-9a-f]{16})\s/gm)].map((match) => [match[1], match[2]]),
  );
  expect(Object.keys(ids)).toEqual(["photo.png", "photo-copy.PNG", "other-photo.png", "clip.mp4", "huge-sparse.mov"]);
  expect(ids["photo-copy.PNG"]).toBe(ids["photo.png"]);
  expect(ids["other-photo.png"]).not.toBe(ids["photo.png"]);
});
