// npm run bench:id — what a media ID costs, against the floors and the naive way, in one run.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { mkdtemp, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import xxhash from "xxhash-wasm";
import { computeMediaId, computeMediaIdSync, initMediaIdHasher } from "../src/index.ts";
import { compare, machine, Report, µs } from "./lib.ts";

const dir = await mkdtemp(join(tmpdir(), "media-intake-bench-"));
try {
  await initMediaIdHasher();
  const { h64Raw } = await xxhash();
  const report = new Report();
  console.log(`media-intake bench:id on ${machine()}\n`);

  const small = join(dir, "small.bin");
  await writeFile(small, new Uint8Array(4096).map((_, i) => i % 251));
  const huge = join(dir, "huge.bin");
  await writeFile(huge, "");
  await truncate(huge, 64 * 2 ** 30);

  // 1. Flat cost: a 4 KiB file against a 64 GiB sparse file.
  const flat = await compare([
    { name: "sync4k", run: () => computeMediaIdSync(small) },
    { name: "sync64g", run: () => computeMediaIdSync(huge) },
    { name: "async4k", run: () => computeMediaId(small) },
    { name: "async64g", run: () => computeMediaId(huge) },
  ]);
  console.log(`computeMediaIdSync  4 KiB ${µs(flat.sync4k!)}, 64 GiB ${µs(flat.sync64g!)}`);
  console.log(`computeMediaId      4 KiB ${µs(flat.async4k!)}, 64 GiB ${µs(flat.async64g!)}\n`);
  report.line("sync ID, 64 GiB / 4 KiB (median)", `${(flat.sync64g! / flat.sync4k!).toFixed(2)}x`, "<= 1.5", flat.sync64g! / flat.sync4k! <= 1.5);
  report.line("async ID, 64 GiB / 4 KiB (median)", `${(flat.async64g! / flat.async4k!).toFixed(2)}x`, "<= 1.5", flat.async64g! / flat.async4k! <= 1.5);

  // 2. The sync ID against the bare floor: open, fstat, three readSync, close, h64Raw.
  const floorBuffer = Buffer.alloc(3080);
  const floor = () => {
    const fd = openSync(huge, "r");
    const size = fstatSync(fd).size;
    const middle = Math.floor((size - 1024) / 2);
    floorBuffer.writeBigUInt64LE(BigInt(size), 0);
    readSync(fd, floorBuffer, 8, 1024, 0);
    readSync(fd, floorBuffer, 1032, 1024, middle);
    readSync(fd, floorBuffer, 2056, 1024, size - 1024);
    closeSync(fd);
    return h64Raw(floorBuffer);
  };
  const sync = await compare([
    { name: "floor", run: floor },
    { name: "id", run: () => computeMediaIdSync(huge) },
  ]);
  report.line(`sync ID ${µs(sync.id!)} / bare floor ${µs(sync.floor!)}`, `${(sync.id! / sync.floor!).toFixed(2)}x`, "<= 1.3", sync.id! / sync.floor! <= 1.3);

  // 3. The async ID against the best hand-written FileHandle version (reads in parallel).
  const handWritten = async () => {
    const handle = await open(huge, "r");
    try {
      const { size } = await handle.stat();
      const buffer = Buffer.alloc(3080);
      buffer.writeBigUInt64LE(BigInt(size), 0);
      const middle = Math.floor((size - 1024) / 2);
      await Promise.all([
        handle.read(buffer, 8, 1024, 0),
        handle.read(buffer, 1032, 1024, middle),
        handle.read(buffer, 2056, 1024, size - 1024),
      ]);
      return h64Raw(buffer);
    } finally {
      await handle.close();
    }
  };
  const async = await compare([
    { name: "hand", run: handWritten },
    { name: "id", run: () => computeMediaId(huge) },
  ]);
  report.line(`async ID ${µs(async.id!)} / hand-written FileHandle ${µs(async.hand!)}`, `${(async.id! / async.hand!).toFixed(2)}x`, "<= 1.0", async.id! / async.hand! <= 1.0);

  // 4. The naive way: read the whole 1 GiB file, then hash it.
  const gib = join(dir, "one-gib.bin");
  const chunk = Buffer.alloc(2 ** 24, 7);
  const writer = await open(gib, "w");
  for (let i = 0; i < 64; i++) await writer.write(chunk);
  await writer.close();
  const naive = await compare([{ name: "naive", run: async () => h64Raw(await readFile(gib)) }], { rounds: 3, batch: 1 });
  const idOnGib = await compare([{ name: "id", run: () => computeMediaId(gib) }]);
  report.line(`naive read+hash of 1 GiB ${(naive.naive! / 1e6).toFixed(0)} ms / ID ${µs(idOnGib.id!)}`, `${Math.round(naive.naive! / idOnGib.id!)}x`, ">= 1000", naive.naive! / idOnGib.id! >= 1000);

  // 5. In-memory IDs of 1 KiB buffers against bare h64Raw on the same bytes. The floor of any
  // ID through xxhash-wasm's public API is shown too: copy behind the 8-byte size, hash, hex.
  const kib = new Uint8Array(1024).map((_, i) => i % 251);
  const scratch = new Uint8Array(1032);
  const memory = await compare(
    [
      { name: "bare", run: () => h64Raw(kib) },
      { name: "floor", run: () => (scratch.set(kib, 8), h64Raw(scratch).toString(16).padStart(16, "0")) },
      { name: "id", run: () => computeMediaIdSync(kib) },
    ],
    { batch: 5000 },
  );
  const perSecond = (ns: number) => `${(1e9 / ns / 1e6).toFixed(2)} M/s`;
  report.line(`1 KiB IDs ${perSecond(memory.id!)} / bare h64Raw ${perSecond(memory.bare!)}`, `${(memory.bare! / memory.id!).toFixed(2)}x`, ">= 0.7", memory.bare! / memory.id! >= 0.7);
  console.log(`  (floor through the public API: copy + h64Raw + hex ${perSecond(memory.floor!)}, ${(memory.bare! / memory.floor!).toFixed(2)}x of bare)`);

  console.log(report.failed ? `\n${report.failed} goal(s) missed` : "\nall goals met");
} finally {
  await rm(dir, { recursive: true, force: true });
}
