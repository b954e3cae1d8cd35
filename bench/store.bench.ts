// npm run bench:store — storeMedia against the plain pipeline multer-style disk storage uses,
// and its peak memory for 100 MiB against 1 GiB, in one run.
import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { sampleMp4 } from "../examples/sample-media.ts";
import { storeMedia } from "../src/index.ts";
import { machine, median, Report } from "./lib.ts";

const CHUNK = 64 * 1024;
const MiB = 2 ** 20;

/** An upload as a network stream delivers it: fresh 64 KiB chunks, an MP4 header first. */
function upload(bytes: number): Readable {
  const header = sampleMp4(CHUNK - 64).subarray(0, CHUNK);
  return Readable.from(
    (function* () {
      yield header;
      for (let sent = CHUNK; sent < bytes; sent += CHUNK) yield Buffer.allocUnsafe(Math.min(CHUNK, bytes - sent));
    })(),
  );
}

async function storeOnce(dir: string, bytes: number): Promise<number> {
  const started = performance.now();
  const stored = await storeMedia(upload(bytes), { originalName: "upload.mp4", directories: { videosDir: dir, imagesDir: dir } });
  const ms = performance.now() - started;
  await rm(stored.path);
  return ms;
}

async function plainOnce(dir: string, bytes: number): Promise<number> {
  const path = join(dir, "plain.mp4");
  const started = performance.now();
  await pipeline(upload(bytes), createWriteStream(path));
  const ms = performance.now() - started;
  await rm(path);
  return ms;
}

const mode = process.argv[2];
const dir = await mkdtemp(join(tmpdir(), "media-intake-bench-store-"));
try {
  if (mode === "rss") {
    // Child: one store of the given size, then its peak resident memory.
    await storeOnce(dir, Number(process.argv[3]));
    console.log(process.resourceUsage().maxRSS * 1024);
  } else {
    console.log(`media-intake bench:store on ${machine()}\n`);
    const report = new Report();
    const size = 1024 * MiB;
    const store: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < 5; round++) {
      plain.push(await plainOnce(dir, size));
      store.push(await storeOnce(dir, size));
    }
    const gbps = (ms: number) => `${(size / 1e9 / (ms / 1000)).toFixed(2)} GB/s`;
    console.log(`plain pipeline (64 KiB writes): ${gbps(median(plain))}; storeMedia (ID and rename included): ${gbps(median(store))}`);
    const ratio = median(plain) / median(store);
    report.line("storeMedia / plain pipeline throughput, 1 GiB", `${ratio.toFixed(2)}x`, ">= 1.5", ratio >= 1.5);

    const run = promisify(execFile);
    const rss = async (bytes: number) =>
      Number((await run(process.execPath, [import.meta.filename, "rss", String(bytes)])).stdout.trim());
    const small = await rss(100 * MiB);
    const large = await rss(1024 * MiB);
    const delta = (large - small) / MiB;
    console.log(`peak RSS: 100 MiB upload ${(small / MiB).toFixed(1)} MiB, 1 GiB upload ${(large / MiB).toFixed(1)} MiB`);
    report.line("peak RSS, 1 GiB upload minus 100 MiB upload", `${delta.toFixed(1)} MiB`, "< 16 MiB", delta < 16);
    console.log(report.failed ? `\n${report.failed} goal(s) missed` : "\nall goals met");
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
