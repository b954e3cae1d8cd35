// npm run bench:lifecycle — what the lifecycle's guarantees cost per upload, in one run: the
// journaled flow (intakeMedia, then trackMediaProcessing with the journal) against the same
// store and the same annotations calls without any journal, under each durability (with
// "power" the journal's changes are fdatasynced, and the store's files synced on both sides).
// Small uploads on the OS temp directory (the disk), where the journal's file operations weigh
// most. The annotations stub runs in its own process on loopback.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { samplePng } from "../examples/sample-media.ts";
import { createAnnotationsClient, type Durability, intakeMedia, storeMedia, trackMediaProcessing, userIdFromToken } from "../src/index.ts";
import { machine, median } from "./lib.ts";

const UPLOADS = 200;
const CONCURRENCY = 16;
const ROUNDS = 5;
const TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl";

const child = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const [firstLine] = (await once(child.stdout, "data")) as [Buffer];
const client = createAnnotationsClient({ baseUrl: firstLine.toString().trim(), token: "service-token" });
const detector = async () => ({ boxes: 1 });

type Variant = { name: string; upload: (bytes: Uint8Array, name: string, directories: { videosDir: string; imagesDir: string }) => Promise<unknown> };
/** The journaled flow, and the same store and calls without any journal, under one durability. */
const pair = (durability: Durability): Variant[] => [
  {
    name: `journaled, ${durability} (intakeMedia + trackMediaProcessing)`,
    async upload(bytes, name, directories) {
      const media = await intakeMedia(bytes, { originalName: name, token: TOKEN, client, directories, durability });
      return trackMediaProcessing(detector, { client, directories, durability })(media);
    },
  },
  {
    name: `no journal, ${durability} (same store, same calls)`,
    async upload(bytes, name, directories) {
      const userId = await userIdFromToken(TOKEN);
      const stored = await storeMedia(bytes, { originalName: name, directories, durability });
      const { record } = await client.media.createOrGet({ ...stored, userId }, { token: TOKEN });
      return trackMediaProcessing(detector, { client, token: TOKEN })(record);
    },
  },
];
const variants: Variant[] = [...pair("process"), ...pair("power")];

let seed = 0;
async function round(variant: Variant): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), "bench-lifecycle-"));
  const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
  // Unique content per upload (~200 KB PNGs), made before the clock starts.
  const files = Array.from({ length: UPLOADS }, () => samplePng(260, 260, seed++ % 256).subarray(0));
  const distinct = files.map((bytes, i) => Buffer.concat([bytes, Buffer.from(`${seed}-${i}`)]));
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < UPLOADS) {
        const i = next++;
        await variant.upload(distinct[i] as Uint8Array, `img-${i}.png`, directories);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await rm(root, { recursive: true, force: true });
  return UPLOADS / seconds;
}

for (const variant of variants) await round(variant); // warm-up
const rates = variants.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (const [i, variant] of variants.entries()) rates[i]?.push(await round(variant));
const [journaled, bare, journaledPower, barePower] = rates.map((samples) => median(samples));
console.log(`machine: ${machine()}`);
console.log(`${UPLOADS} uploads of ~200 KB at concurrency ${CONCURRENCY}, ${ROUNDS} rounds interleaved, medians:`);
for (const [i, variant] of variants.entries()) console.log(`  ${variant.name.padEnd(48)} ${median(rates[i] ?? []).toFixed(0).padStart(6)} uploads/s`);
console.log(`journaled / no journal, durability process: ${((journaled ?? 0) / (bare ?? 1)).toFixed(2)}x the throughput`);
console.log(`journaled / no journal, durability power (every file synced on both sides): ${((journaledPower ?? 0) / (barePower ?? 1)).toFixed(2)}x the throughput`);
child.stdin.end();
await once(child, "exit");
