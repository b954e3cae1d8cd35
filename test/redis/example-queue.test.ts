// The Express example's Redis mode over real HTTP: uploads enqueue detection, a request answers
// 202 with where to poll when the result is slow, and `npm run example:worker` stops gracefully.
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { SignJWT } from "jose";
import { beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { createDetectionsApp } from "../../examples/express/app.ts";
import { type Detection, detect } from "../../examples/express/detector.ts";
import { samplePng } from "../../examples/sample-media.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, MediaStatus } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { createDetectionQueue, type DetectionQueue, startDetectionWorker } from "../../src/queue/index.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";

const secret = "example-queue-secret-0123456789abcdef";
let root: string;
let redisUrl: string;
let redis: Awaited<ReturnType<typeof startRedisServer>>;
let bobToken: string;
let annotationsUrl: string;
let token: string;
let detections: DetectionQueue<Detection[]>;
let appUrl: string;
const directories = () => ({ videosDir: join(root, "videos"), imagesDir: join(root, "images") });

beforeEach(async () => {
  root = await makeTempDir();
  redis = await startRedisServer();
  redisUrl = redis.url;
  const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  onTestFinished(() => annotations.close());
  annotationsUrl = annotations.url;
  token = await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
  bobToken = await new SignJWT({ sub: "bob" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
  detections = createDetectionQueue<Detection[]>({ connection: { url: redisUrl } });
  const journal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
  onTestFinished(async () => {
    await detections.close();
    await journal.close();
  });
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotationsUrl, token }),
    directories: directories(),
    auth: { verify: { secret } },
    queue: { detections, journal, resultWaitMs: 300 },
  });
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  onTestFinished(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))));
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

const auth = (as = token) => ({ authorization: `Bearer ${as}` });

async function upload(name: string, bytes: Uint8Array, as = token) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${appUrl}/detect`, { method: "POST", body: form, headers: auth(as) });
  return { status: response.status, location: response.headers.get("location"), retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Record<string, any> };
}

async function poll(path: string, as = token, method = "GET") {
  const response = await fetch(`${appUrl}${path}`, { method, headers: auth(as) });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function history(id: string): Promise<number[]> {
  const response = await fetch(`${annotationsUrl}/api/media/${id}/history`, { headers: auth() });
  return ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}

describe("the example with REDIS_URL", () => {
  it("answers 202 with where to poll when detection outlasts RESULT_WAIT_MS; the poll gives the detections once done", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const journal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
    const worker = startDetectionWorker(
      async (media, { signal }) => {
        await gate;
        return detect(media.path ?? "", media.id, signal);
      },
      { connection: { url: redisUrl }, client: createAnnotationsClient({ baseUrl: annotationsUrl, token }), journal },
    );
    onTestFinished(async () => {
      await worker.close(true);
      await journal.close();
    });
    const png = samplePng(40, 30, 4);
    const id = await computeMediaId(png);
    const first = await upload("street.png", png);
    expect(first).toMatchObject({ status: 202, location: `/detections/${id}`, body: { media: { id, userId: "alice" }, detection: { jobId: id, poll: `/detections/${id}` } } });
    expect(["waiting", "active"]).toContain(first.body.detection.state);
    await vi.waitFor(async () => expect(await poll(`/detections/${id}`)).toMatchObject({ status: 200, body: { media: { id, mediaStatus: MediaStatus.AIProcessing }, detection: { state: "active" } } }), {
      timeout: 10_000,
      interval: 50,
    });
    // A duplicate meanwhile joins the same job.
    const twin = await upload("street-copy.png", png);
    expect(twin).toMatchObject({ status: 202, body: { detection: { jobId: id } } });
    release();
    const expected = await detect(join(directories().imagesDir, `${id}.png`), id);
    await vi.waitFor(async () => expect((await poll(`/detections/${id}`)).body.detection).toEqual({ jobId: id, state: "completed", detections: expected }), { timeout: 10_000, interval: 50 });
    expect((await poll(`/detections/${id}`)).body.media).toMatchObject({ id, mediaStatus: MediaStatus.AIProcessed });
    expect(await history(id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
    // Once done, an upload of the same content answers at once with the kept result.
    expect(await upload("again.png", png)).toMatchObject({ status: 200, body: { detections: expected, media: { id, mediaStatus: MediaStatus.AIProcessed } } });
  });

  it("the poll route needs a token, and answers 404 for a job it does not have", async () => {
    expect((await fetch(`${appUrl}/detections/00000000000000aa`)).status).toBe(401);
    expect(await poll("/detections/00000000000000aa")).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
    expect(await poll("/detections/..%2Fetc")).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
  });

  it("another user's job, rerun and record answer as ones that do not exist; a rerun's job ID is unguessable", async () => {
    const journal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
    const worker = startDetectionWorker(async (media, { signal }) => detect(media.path ?? "", media.id, signal), {
      connection: { url: redisUrl },
      client: createAnnotationsClient({ baseUrl: annotationsUrl, token }),
      journal,
    });
    onTestFinished(async () => {
      await worker.close(true);
      await journal.close();
    });
    const png = samplePng(30, 30, 21);
    const id = await computeMediaId(png);
    await upload("alice-private.png", png);
    await vi.waitFor(async () => expect((await poll(`/detections/${id}`)).body.detection).toMatchObject({ state: "completed" }), { timeout: 10_000, interval: 50 });
    const own = await poll(`/detect/${id}`, token, "POST");
    expect([200, 202]).toContain(own.status);
    if (own.status === 202) await vi.waitFor(async () => expect((await poll(own.body.detection.poll)).body.detection).toMatchObject({ state: "completed" }), { timeout: 10_000, interval: 50 });
    // A rerun's job, as the route queues it: its ID cannot be guessed from the media ID.
    const { jobId: rerunJob } = await detections.enqueue({ id, path: join(directories().imagesDir, `${id}.png`), mediaType: 2, name: "alice-private.png", userId: "alice" }, { rerun: true });
    expect(rerunJob).toMatch(new RegExp(`^${id}-rerun-[0-9a-f]{32}$`));
    const missingJob = `00000000000000aa-rerun-${"0".repeat(32)}`;
    const jobNotFound = (jobId: string) => ({ status: 404, body: { error: { code: "NOT_FOUND", message: `No detection job ${jobId} (never queued, or its result expired).` } } });
    expect(await poll("/detections/00000000000000aa", bobToken)).toEqual(jobNotFound("00000000000000aa"));
    expect(await poll(`/detections/${missingJob}`, bobToken)).toEqual(jobNotFound(missingJob));
    expect(await poll(`/detections/${id}`, bobToken)).toEqual(jobNotFound(id));
    expect(await poll(`/detections/${rerunJob}`, bobToken)).toEqual(jobNotFound(rerunJob));
    expect((await poll(`/detections/${rerunJob}`)).status).toBe(200);
    await vi.waitFor(async () => expect((await poll(`/detections/${rerunJob}`)).body.detection).toMatchObject({ state: "completed" }), { timeout: 10_000, interval: 50 });
    const before = await history(id);
    expect(await poll(`/media/${id}`, bobToken)).toEqual({ status: 404, body: { error: { code: "MEDIA_NOT_FOUND", message: `No media ${id}.` } } });
    expect(await poll(`/detect/${id}`, bobToken, "POST")).toEqual({ status: 404, body: { error: { code: "MEDIA_NOT_FOUND", message: `No media ${id}.` } } });
    expect(await history(id)).toEqual(before);
    // Bob holds the bytes: his upload gets the content's answer, not Alice's user ID or file name.
    const bobs = await upload("bob.png", png, bobToken);
    expect(bobs).toMatchObject({ status: 200, body: { media: { id, mediaStatus: MediaStatus.AIProcessed } } });
    expect(JSON.stringify(bobs.body)).not.toContain("alice");
    expect(await history(id)).toEqual(before);
  });

  it("with Redis stopped, uploads answer 503 with Retry-After and keep nothing", async () => {
    await redis.stop();
    const png = samplePng(30, 30, 22);
    const answers = await Promise.all(Array.from({ length: 5 }, () => upload("down.png", png)));
    for (const answer of answers) expect(answer).toMatchObject({ status: 503, retryAfter: "5", body: { error: { code: "JOURNAL_UNAVAILABLE" } } });
    expect((await filesUnder(root)).filter((path) => path.startsWith("images/"))).toEqual([]);
  });

  it("a poll with Redis stopped answers 503 with Retry-After and a message of its own (a read: never 'nothing was kept')", async () => {
    const png = samplePng(28, 28, 23);
    const id = await computeMediaId(png);
    expect([200, 202]).toContain((await upload("poll.png", png)).status);
    await redis.stop();
    const response = await fetch(`${appUrl}/detections/${id}`, { headers: auth() });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error).toEqual({ code: "JOURNAL_UNAVAILABLE", message: `The state of detection job ${id} cannot be read right now (the queue is out of reach); the job is not affected. Poll again later.` });
  });

  it("the queue out of reach after the media were stored: 503 DETECTION_NOT_QUEUED with the media ID (never 'nothing was kept'), and the job is queued once the queue is back", async () => {
    // The queue on a Redis of its own that is down, while the journal's Redis answers: the
    // window in which one connection is back and the other is not yet.
    const queueRedis = await startRedisServer();
    const queue = createDetectionQueue<Detection[]>({ connection: { url: queueRedis.url }, timeoutMs: 500 });
    const journal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
    const client = createAnnotationsClient({ baseUrl: annotationsUrl, token });
    const app = createDetectionsApp({ client, directories: directories(), auth: { verify: { secret } }, queue: { detections: queue, journal, resultWaitMs: 300 } });
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(async () => {
      await new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done())));
      await queue.close();
      await journal.close();
    });
    await queueRedis.stop();
    const png = samplePng(30, 30, 23);
    const id = await computeMediaId(png);
    const form = new FormData();
    form.append("file", new Blob([png as Uint8Array<ArrayBuffer>]), "later.png");
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/detect`, { method: "POST", body: form, headers: auth() });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(await response.json()).toMatchObject({ error: { code: "DETECTION_NOT_QUEUED", mediaId: id, message: expect.stringMatching(/are stored/) } });
    expect(await filesUnder(directories().imagesDir)).toEqual([`${id}.png`]);
    expect(await history(id)).toEqual([MediaStatus.New]);
    // The queue back, and a worker on it: the job the request could not queue runs.
    await queueRedis.start();
    const workerJournal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
    const worker = startDetectionWorker(async (media, { signal }) => detect(media.path ?? "", media.id, signal), { connection: { url: queueRedis.url }, client, journal: workerJournal });
    onTestFinished(async () => {
      await worker.close(true);
      await workerJournal.close();
    });
    await vi.waitFor(async () => expect(await history(id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]), { timeout: 30_000, interval: 100 });
  });

  it("npm run example:worker on SIGTERM lets the running job finish, then exits 0", async () => {
    const child = spawn(process.execPath, [resolve(import.meta.dirname, "../../examples/express/worker.ts")], {
      env: { ...process.env, REDIS_URL: redisUrl, ANNOTATIONS_URL: annotationsUrl, JWT_SECRET: secret, DETECTOR_DELAY_MS: "1500", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    onTestFinished(() => void child.kill("SIGKILL"));
    const lines: string[] = [];
    const seen = (text: string) => new Promise<void>((done) => {
      if (lines.some((line) => line.includes(text))) return done();
      createInterface({ input: child.stdout }).on("line", (line) => line.includes(text) && done());
    });
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
    await seen('"msg":"worker ready"');
    const png = samplePng(30, 20, 8);
    const id = await computeMediaId(png);
    const uploaded = upload("late.png", png);
    await seen('"msg":"detecting"');
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(lines.filter((line) => line.includes('"msg":"detecting"'))).toHaveLength(1);
    expect(await detections.state(id)).toMatchObject({ state: "completed" });
    expect((await uploaded).status).toBe(202);
    expect(await history(id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
  });
});
