// Tiny benchmark helpers: medians of batch means, candidates interleaved round by round so
// that drift (CPU frequency, page cache, the other core) hits every candidate alike.
import { open } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { sampleMp4 } from "../examples/sample-media.ts";

export type Candidate = { name: string; run: () => unknown };

/** Median nanoseconds per call of each candidate. `batch` calls are timed together. */
export async function compare(candidates: Candidate[], options: { rounds?: number; batch?: number } = {}) {
  const rounds = options.rounds ?? 41;
  const batch = options.batch ?? 200;
  const samples = candidates.map(() => [] as number[]);
  // Only promises are awaited: a microtask per call would hide the cost of a sync candidate.
  for (const candidate of candidates) for (let i = 0; i < batch; i++) await settle(candidate.run()); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [index, candidate] of candidates.entries()) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < batch; i++) {
        const result = candidate.run();
        if (result instanceof Promise) await result;
      }
      samples[index]?.push(Number(process.hrtime.bigint() - start) / batch);
    }
  }
  return Object.fromEntries(candidates.map((candidate, index) => [candidate.name, median(samples[index] ?? [])]));
}

async function settle(value: unknown): Promise<void> {
  if (value instanceof Promise) await value;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

export const µs = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;

/** Prints a result line and tracks whether every goal was met. */
export class Report {
  failed = 0;
  line(label: string, value: string, goal: string, met: boolean): void {
    if (!met) this.failed++;
    console.log(`${label.padEnd(58)} ${value.padStart(14)}   goal ${goal.padEnd(9)} ${met ? "met" : "MISSED"}`);
  }
}

/** A well-formed MP4 of `bytes` at `path`, written in 1 MiB blocks; resolves to its size. */
export async function writeMp4(path: string, bytes: number): Promise<number> {
  const header = sampleMp4(0, 1);
  const payload = bytes - header.length;
  header.writeUInt32BE(8 + payload, header.length - 8);
  const file = await open(path, "w");
  await file.write(header, 0, header.length, 0);
  const block = Buffer.alloc(2 ** 20);
  for (let written = 0, n = 0; written < payload; n++) {
    const length = Math.min(block.length, payload - written);
    block.fill(n & 255, 0, length);
    block.writeUInt32BE(n, 0);
    await file.write(block, 0, length, header.length + written);
    written += length;
  }
  await file.close();
  return header.length + payload;
}

let stamp = 0;
/** New content for the next run: a stamp in the file's head sample (a new media ID, never a duplicate). */
export async function freshen(path: string): Promise<void> {
  const file = await open(path, "r+");
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(++stamp);
  await file.write(bytes, 0, 8, 200);
  await file.close();
}
