// npm run bench:queue — what the detection worker wrapper costs per job, in one run: jobs/s of
// startDetectionWorker (status lifecycle, journal on Redis) against a bare BullMQ worker with the
// same no-op processor, and against a bare worker that makes the same two status calls by hand.
// One redis-server started from PATH on a free port; the annotations stub in its own process on
// loopback. Each round: a fresh queue, its jobs added before the clock starts, timed until all
// are completed; variants interleaved round by round, medians.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue, Worker } from "bullmq";
import { startLocalRedis } from "../examples/local-redis.ts";
import { createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { createRedisJournal } from "../src/journal/redis.ts";
import { startDetectionWorker } from "../src/queue/index.ts";
import { machine, median } from "./lib.ts";

const JOBS = 500;
const CONCURRENCY = 16;
const ROUNDS = 5;

const dir = await mkdtemp(join(tmpdir(), "bench-queue-"));
const redis = await startLocalRedis(dir, { appendfsync: "everysec" });
const connection = { url: redis.url, maxRetriesPerRequest: null };
const stub = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const [firstLine] = (await once(stub.stdout, "data")) as [Buffer];
const client = createAnnotationsClient({ baseUrl: firstLine.toString().trim(), token: "service-token" });
const noop = async () => ({ boxes: 0 });

// One record per job ID, made once: every round moves them through AIProcessing again.
const ids = Array.from({ length: JOBS }, (_, i) => (0xb000 + i).toString(16).padStart(16, "0"));
for (const id of ids) await client.media.create({ id, name: `${id}.png`, path: `/data/images/${id}.png`, mediaType: 2, userId: "bench" });

type Variant = { name: string; start: (queue: string) => { close: () => Promise<void> } };
const journal = createRedisJournal({ connection: redis.url, prefix: "bench:journal" });
const variants: Variant[] = [
  {
    name: "bare BullMQ worker, no-op processor",
    start: (queue) => new Worker(queue, noop, { connection, concurrency: CONCURRENCY }),
  },
  {
    name: "bare BullMQ worker, the same two status calls",
    start: (queue) =>
      new Worker(
        queue,
        async (job) => {
          await client.media.updateStatus(job.data.id, MediaStatus.AIProcessing);
          const result = await noop();
          await client.media.updateStatus(job.data.id, MediaStatus.AIProcessed);
          return result;
        },
        { connection, concurrency: CONCURRENCY },
      ),
  },
  {
    name: "startDetectionWorker (lifecycle + Redis journal)",
    start: (queue) => startDetectionWorker(noop, { connection, client, journal, name: queue, concurrency: CONCURRENCY }),
  },
];

let queues = 0;
async function round(variant: Variant): Promise<number> {
  const name = `bench-${queues++}`;
  const queue = new Queue(name, { connection });
  await queue.addBulk(ids.map((id) => ({ name: "detect", data: { id, path: `/data/images/${id}.png`, mediaType: 2, name: `${id}.png`, userId: "bench" }, opts: { jobId: id } })));
  const started = performance.now();
  const worker = variant.start(name);
  // The same completion check for every variant: the queue's completed count, every 5 ms.
  while ((await queue.getCompletedCount()) < JOBS) await sleep(5);
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return JOBS / seconds;
}

for (const variant of variants) await round(variant); // warm-up
const rates = variants.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (const [i, variant] of variants.entries()) rates[i]?.push(await round(variant));
const [bare, bareCalls, wrapper] = rates.map((samples) => median(samples)) as [number, number, number];
console.log(`machine: ${machine()}`);
console.log(`${JOBS} jobs at concurrency ${CONCURRENCY}, ${ROUNDS} rounds interleaved, medians:`);
for (const [i, variant] of variants.entries()) console.log(`  ${variant.name.padEnd(50)} ${median(rates[i] ?? []).toFixed(0).padStart(6)} jobs/s`);
// The goal is read against the bare worker doing the same work (the two status calls): against
// a no-op that calls nothing, the ratio is the cost of two HTTP round trips, not of the wrapper.
const ratio = wrapper / bareCalls;
console.log(`wrapper / bare worker, same calls: ${ratio.toFixed(2)}x the throughput (goal >= 0.85x: ${ratio >= 0.85 ? "met" : "MISSED"})`);
console.log(`wrapper / bare no-op worker:       ${(wrapper / bare).toFixed(2)}x the throughput (what two status calls per job cost here)`);
await journal.close();
stub.stdin.end();
await once(stub, "exit");
await redis.stop();
await rm(dir, { recursive: true, force: true });
