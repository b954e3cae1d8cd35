// Detection as BullMQ jobs on a real redis-server: replicas enqueue, workers run the detector
// under the status lifecycle, and a worker killed mid-job is recovered by BullMQ itself.
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { Queue, UnrecoverableError } from "bullmq";
import { Redis } from "ioredis";
import { beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { createAnnotationsClient, JournalUnavailableError, MediaStatus, recoverInterrupted } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { createDetectionQueue, DetectionFailedError, startDetectionWorker } from "../../src/queue/index.ts";
import { startChild } from "../helpers/child.ts";
import type { FakeAnnotations, FakeRequest, Fault } from "../helpers/fake-annotations.ts";
import { startFaultFixture } from "../helpers/fixture.ts";
import { redisEvent, startRedisServer } from "../helpers/redis-server.ts";

let fake: FakeAnnotations;
let service: { url: string; close: () => Promise<void> };
let redisUrl: string;
let redis: Awaited<ReturnType<typeof startRedisServer>>;
let intercept: ((request: FakeRequest) => Fault | undefined) | undefined;
let connection: { host: string; port: number; maxRetriesPerRequest: null };
let name: string;
const id = "00000000000000c1";

beforeEach(async () => {
  intercept = undefined;
  ({ fake, service } = await startFaultFixture((request) => intercept?.(request)));
  onTestFinished(() => service.close());
  redis = await startRedisServer();
  redisUrl = redis.url;
  connection = { host: "127.0.0.1", port: Number(new URL(redisUrl).port), maxRetriesPerRequest: null };
  name = `detect-${randomBytes(3).toString("hex")}`;
  fake.records.set(id, { id, name: "clip.mp4", path: `/data/videos/${id}.mp4`, mediaType: 1, mediaStatus: 1, userId: "alice" });
});

const client = () => createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false });
const statusesWritten = () => fake.log.filter((r) => r.method === "PUT").map((r) => (JSON.parse(r.body) as { MediaStatus: number }).MediaStatus);

function queue(options: { attempts?: number } = {}) {
  const made = createDetectionQueue<{ boxes: number }>({ connection, name, backoffMs: 10, ...options });
  onTestFinished(() => made.close());
  return made;
}

function worker(detect: Parameters<typeof startDetectionWorker>[0], extra: { lockDurationMs?: number; stalledIntervalMs?: number; maxStalledCount?: number } = {}) {
  const journal = createRedisJournal({ connection: redisUrl, prefix: `${name}:journal`, heartbeatMs: 100 });
  const started = startDetectionWorker(detect, { connection, client: client(), journal, name, ...extra });
  onTestFinished(async () => {
    await started.close(true);
    await journal.close();
  });
  return started;
}

/** A worker in a child process that has taken the media's job and is in its detector (which never ends). */
async function workerInDetect(detections: ReturnType<typeof queue>) {
  const doomed = startChild(resolve(import.meta.dirname, "../fixtures/detection-worker.ts"), { redisUrl, annotationsUrl: service.url, token: "service-token", name });
  await doomed.line("READY");
  await detections.enqueue({ id });
  await doomed.line("IN_DETECT");
  return doomed;
}

describe("detection on BullMQ", () => {
  it("duplicates from two web replicas are one job, and every waiter gets its result", async () => {
    const [replicaA, replicaB] = [queue(), queue()];
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    worker(async () => {
      calls += 1;
      await gate;
      return { boxes: 4 };
    });
    const enqueued = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? replicaA : replicaB).enqueue({ id, path: `/data/videos/${id}.mp4` })));
    expect(new Set(enqueued.map((e) => e.jobId))).toEqual(new Set([id]));
    expect(enqueued.filter((e) => e.created)).toHaveLength(1);
    const waiting = [replicaA.result(id), replicaB.result(id, { timeoutMs: 20_000 })];
    await vi.waitFor(() => expect(calls).toBe(1));
    release();
    expect(await Promise.all(waiting)).toEqual([{ boxes: 4 }, { boxes: 4 }]);
    expect(calls).toBe(1);
    expect(statusesWritten()).toEqual([MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
    expect(await replicaA.state(id)).toEqual({ state: "completed", result: { boxes: 4 } });
    // Later duplicates join the finished job: its result, no new run.
    expect(await replicaB.enqueue({ id })).toEqual({ jobId: id, created: false });
  });

  it("records Error only after the last try", async () => {
    const detections = queue({ attempts: 3 });
    const tries: number[] = [];
    worker(async (_media, { attempt }) => {
      tries.push(attempt);
      throw new Error(`model crashed (try ${attempt})`);
    });
    await detections.enqueue({ id });
    const failure = await detections.result(id).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DetectionFailedError);
    expect(failure).toMatchObject({ code: "DETECTION_FAILED", jobId: id, failedReason: "model crashed (try 3)" });
    expect(tries).toEqual([1, 2, 3]);
    await vi.waitFor(() => expect(statusesWritten()).toEqual([MediaStatus.AIProcessing, MediaStatus.AIProcessing, MediaStatus.AIProcessing, MediaStatus.Error]));
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.Error);
  });

  it("the last try's AIProcessing write has no known outcome (a 503): the job fails for good, and the record an earlier try left in AIProcessing ends Error", async () => {
    const detections = queue({ attempts: 2 });
    const tries: number[] = [];
    // The second AIProcessing write (the last try's) gets a 503, unapplied.
    let aiProcessingWrites = 0;
    intercept = (request) => {
      if (request.method !== "PUT" || (JSON.parse(request.body) as { MediaStatus: number }).MediaStatus !== MediaStatus.AIProcessing) return undefined;
      return ++aiProcessingWrites === 2 ? { status: 503 } : undefined;
    };
    worker(async (_media, { attempt }) => {
      tries.push(attempt);
      throw new Error(`model crashed (try ${attempt})`);
    });
    await detections.enqueue({ id });
    await expect(detections.result(id)).rejects.toMatchObject({ code: "DETECTION_FAILED", failedReason: expect.stringMatching(/Recording status AIProcessing.*503/) });
    expect(tries).toEqual([1]);
    await vi.waitFor(() => expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.Error), { timeout: 30_000, interval: 50 });
    expect(statusesWritten()).toEqual([MediaStatus.AIProcessing, MediaStatus.AIProcessing, MediaStatus.Error]);
  });

  it("an UnrecoverableError (a corrupt file) ends the job and the record at once, with no further try", async () => {
    const detections = queue({ attempts: 3 });
    let tries = 0;
    worker(async () => {
      tries += 1;
      throw new UnrecoverableError("corrupt file: truncated moov box");
    });
    await detections.enqueue({ id });
    await expect(detections.result(id)).rejects.toMatchObject({ code: "DETECTION_FAILED", failedReason: "corrupt file: truncated moov box" });
    await vi.waitFor(() => expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.Error));
    expect(tries).toBe(1);
    expect(statusesWritten()).toEqual([MediaStatus.AIProcessing, MediaStatus.Error]);
  });

  it("a worker killed mid-job: BullMQ runs the job again on another worker, and the record ends right", async () => {
    const detections = queue();
    const doomed = await workerInDetect(detections);
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    await doomed.kill();
    worker(async () => ({ boxes: 9 }), { lockDurationMs: 1_000, stalledIntervalMs: 300 });
    expect(await detections.result(id, { timeoutMs: 30_000 })).toEqual({ boxes: 9 });
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    const raw = new Queue(name, { connection });
    onTestFinished(() => raw.close());
    expect(await raw.getActiveCount()).toBe(0);
  });

  it("a graceful shutdown lets the running job finish", async () => {
    const detections = queue();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running!: () => void;
    const started = new Promise<void>((r) => (running = r));
    const running1 = worker(async () => {
      running();
      await gate;
      return { boxes: 2 };
    });
    await detections.enqueue({ id });
    await started;
    const closing = running1.close();
    release();
    await closing;
    expect(await detections.state(id)).toEqual({ state: "completed", result: { boxes: 2 } });
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessed);
  });

  it("a killed worker's run is BullMQ's to end: a recovery pass meanwhile leaves the record in AIProcessing", async () => {
    const detections = queue();
    await (await workerInDetect(detections)).kill();
    // Another host's recovery, once the dead worker's heartbeat has lapsed: nothing to end.
    const journal = createRedisJournal({ connection: redisUrl, prefix: `${name}:journal`, heartbeatMs: 100 });
    onTestFinished(() => journal.close());
    await vi.waitFor(
      async () => {
        const report = await recoverInterrupted({ client: client(), journal, directories: { videosDir: "/nonexistent/v", imagesDir: "/nonexistent/i" }, sweepPartials: false });
        expect(report.live).toBe(0);
        expect(report.markedError).toEqual([]);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    worker(async () => ({ boxes: 5 }), { lockDurationMs: 1_000, stalledIntervalMs: 300 });
    expect(await detections.result(id, { timeoutMs: 30_000 })).toEqual({ boxes: 5 });
    expect(statusesWritten()).toEqual([MediaStatus.AIProcessing, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
  });

  it("a job that stalls more often than maxStalledCount is failed by BullMQ, and its record goes to Error", async () => {
    const detections = queue();
    await (await workerInDetect(detections)).kill();
    let ran = 0;
    worker(
      async () => {
        ran += 1;
        return { boxes: 1 };
      },
      { lockDurationMs: 1_000, stalledIntervalMs: 300, maxStalledCount: 0 },
    );
    const failure = await detections.result(id, { timeoutMs: 30_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "DETECTION_FAILED", failedReason: "job stalled more than allowable limit" });
    await vi.waitFor(() => expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.Error), { timeout: 10_000 });
    expect(ran).toBe(0);
  });

  it("the annotations service down when the run ends: the job completes, and AIProcessed lands when the service is back", async () => {
    const detections = queue();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let back!: () => void;
    const serviceBack = new Promise<void>((r) => (back = r));
    worker(async () => {
      // Down from here: every call fails with 503 until it is back.
      intercept = () => ({ status: 503, after: Promise.resolve() });
      await gate;
      return { boxes: 3 };
    });
    await detections.enqueue({ id });
    await vi.waitFor(() => expect(intercept).toBeDefined());
    release();
    expect(await detections.result(id, { timeoutMs: 20_000 })).toEqual({ boxes: 3 });
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    intercept = undefined;
    back();
    await serviceBack;
    await vi.waitFor(() => expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessed), { timeout: 20_000, interval: 100 });
  });

  it("Redis restarted mid-run: the job finishes, its result and its record are right", async () => {
    const detections = queue();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running!: () => void;
    const started = new Promise<void>((r) => (running = r));
    worker(async () => {
      running();
      await gate;
      return { boxes: 6 };
    });
    await detections.enqueue({ id });
    await started;
    await redis.restart();
    release();
    expect(await detections.result(id, { timeoutMs: 30_000 })).toEqual({ boxes: 6 });
    expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    const raw = new Queue(name, { connection });
    onTestFinished(() => raw.close());
    expect(await raw.getActiveCount()).toBe(0);
  });

  it("Redis stopped: enqueue and state fail promptly with JournalUnavailableError (never wait in the offline queue), result at its deadline, and all work once Redis is back", async () => {
    // The web side's own client, as BullMQ wants it (no retry limit: ioredis alone would hold the add until Redis is back).
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    client.on("error", () => {});
    onTestFinished(() => client.disconnect());
    await redisEvent(client, "ready");
    const detections = createDetectionQueue({ connection: client, name });
    onTestFinished(() => detections.close());
    await detections.enqueue({ id: "00000000000000c2" });
    const closed = redisEvent(client, "close");
    await redis.stop();
    await closed;
    const refused = await detections.enqueue({ id }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(JournalUnavailableError);
    expect(refused).toMatchObject({ code: "JOURNAL_UNAVAILABLE", location: `redis queue ${name}`, message: expect.stringMatching(new RegExp(`^Queueing detection job ${id} \\(redis queue ${name}\\): `)) });
    // Reading a job (a client polling) is refused as promptly: never a request that hangs.
    await expect(detections.state("00000000000000c2")).rejects.toMatchObject({ code: "JOURNAL_UNAVAILABLE", message: expect.stringMatching(/^Reading detection job 00000000000000c2 /) });
    // Waiting for a result waits through an outage to its deadline, then says why there is none.
    await expect(detections.result("00000000000000c2", { timeoutMs: 300 })).rejects.toMatchObject({ code: "JOURNAL_UNAVAILABLE", message: expect.stringMatching(/^Waiting for detection job 00000000000000c2 /) });
    const ready = redisEvent(client, "ready");
    await redis.start();
    await ready;
    expect(await detections.enqueue({ id })).toEqual({ jobId: id, created: true });
    expect(await detections.state(id)).toMatchObject({ state: "waiting" });
  });
});
