// npm run demo — makes sample media in a temp directory and prints their media IDs.
import { mkdtemp, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { computeMediaId, computeMediaIdSync, initMediaIdHasher } from "../src/index.ts";
import { sampleMp4, samplePng } from "./sample-media.ts";

const dir = await mkdtemp(join(tmpdir(), "media-intake-demo-"));
try {
  const files = {
    "photo.png": samplePng(64, 48, 1),
    "photo-copy.PNG": samplePng(64, 48, 1),
    "other-photo.png": samplePng(64, 48, 2),
    "clip.mp4": sampleMp4(8 << 20),
  };
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  const huge = join(dir, "huge-sparse.mov");
  await writeFile(huge, "");
  await truncate(huge, 64 * 2 ** 30);

  await initMediaIdHasher();
  console.log(`${"file".padEnd(18)} ${"bytes".padStart(12)}  ${"media ID".padEnd(16)}  time`);
  for (const name of [...Object.keys(files), basename(huge)]) {
    const path = join(dir, name);
    const started = performance.now();
    const id = await computeMediaId(path);
    const ms = performance.now() - started;
    if (computeMediaIdSync(path) !== id) throw new Error(`sync and async IDs differ for ${name}`);
    console.log(`${name.padEnd(18)} ${String((await stat(path)).size).padStart(12)}  ${id}  ${ms.toFixed(2)} ms`);
  }
  console.log("\nThe copy has the ID of the original; a 64 GiB file costs what a small one does.");
} finally {
  await rm(dir, { recursive: true, force: true });
}
