// The example's poll on one host (no queue): a finished tus upload says to poll
// `/detections/<mediaId>`, which answers as the queue's does: the state from the record's status
// (waiting, active, completed, failed), the detections or the error of the last run in this
// process, and another user's job as the 404 of a job that never was.
import { join } from "node:path";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { type Detection, detect } from "../examples/express/detector.ts";
import { samplePng } from "../examples/sample-media.ts";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const secret = "express-poll-secret-0123456789abcdef";
const tokens: Record<string, string> = {};
const started: Array<{ close: () => Promise<void> }> = [];
let root: string;
let annotations: DevAnnotationsServer;

beforeEach(async () => {
  root = await makeTempDir();
  annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  started.push(annotations);
  for (const sub of ["alice", "bob", "service"]) tokens[sub] = await signToken(sub, secret, "5m");
});
afterEach(async () => {
  for (const one of started.splice(0).reverse()) await one.close();
});

/** The example on the test's folders and annotations service (a second one shares them). */
async function startApp(detector?: (path: string, id: string, signal: AbortSignal) => Promise<Detection[]>): Promise<string> {
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotations.url, token: tokens.service as string }),
    directories: storageDirectoriesIn(root),
    auth: { verify: { secret } },
    ...(detector ? { detector } : {}),
  });
  const server = await startServer(app);
  started.push(server);
  return server.url;
}

function tusUpload(url: string, bytes: Buffer, name: string) {
  return new Promise<{ status: number; body: Record<string, any> }>((resolve, reject) => {
    new Upload(bytes, {
      endpoint: `${url}/files`,
      metadata: { filename: name },
      headers: { authorization: `Bearer ${tokens.alice}` },
      onSuccess: ({ lastResponse }) => resolve({ status: lastResponse.getStatus(), body: JSON.parse(lastResponse.getBody() as string) }),
      onError: reject,
    }).start();
  });
}

async function get(url: string, path: string, as = "alice") {
  const response = await fetch(`${url}${path}`, { headers: as ? { authorization: `Bearer ${tokens[as]}` } : {} });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const jobNotFound = (jobId: string) => ({ status: 404, body: { error: { code: "NOT_FOUND", message: `No detection job ${jobId} (never queued, or its result expired).` } } });

describe("GET /detections/:jobId without a queue", () => {
  it("a tus upload's poll is active while its detection runs, then completed with the detections; for anyone else, a job that never was", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const url = await startApp(async (path, id, signal) => (await held, detect(path, id, signal)));
    const png = samplePng(70, 50, 41);
    const id = await computeMediaId(png);
    const finished = await tusUpload(url, png, "street.png");
    expect(finished).toMatchObject({ status: 200, body: { media: { id, userId: "alice" }, detection: { jobId: id, poll: `/detections/${id}` } } });

    const running = await get(url, finished.body.detection.poll);
    expect(running).toMatchObject({ status: 200, body: { media: { id, mediaStatus: MediaStatus.AIProcessing }, detection: { jobId: id, state: "active" } } });
    expect(running.body.detection).not.toHaveProperty("detections");
    release();
    const expected = await detect(join(root, `images/${id}.png`), id);
    await vi.waitFor(async () => expect((await get(url, `/detections/${id}`)).body.detection).toEqual({ jobId: id, state: "completed", detections: expected }), { timeout: 10_000, interval: 50 });
    expect((await get(url, `/detections/${id}`)).body.media).toMatchObject({ id, userId: "alice", name: "street.png", mediaStatus: MediaStatus.AIProcessed });

    // Another user, a job that never was, a rerun's job (none without a queue), no token.
    expect(await get(url, `/detections/${id}`, "bob")).toEqual(jobNotFound(id));
    expect(await get(url, "/detections/00000000000000aa", "bob")).toEqual(jobNotFound("00000000000000aa"));
    const rerunJob = `${id}-rerun-${"0".repeat(32)}`;
    expect(await get(url, `/detections/${rerunJob}`)).toEqual(jobNotFound(rerunJob));
    expect((await get(url, `/detections/${id}`, "")).status).toBe(401);
  });

  it("a detection that fails is polled as failed, with its error", async () => {
    const url = await startApp();
    const png = samplePng(40, 40, 42);
    const truncated = png.subarray(0, png.length - 20);
    const id = await computeMediaId(truncated);
    const finished = await tusUpload(url, truncated, "cut.png");
    await vi.waitFor(async () => expect((await get(url, finished.body.detection.poll)).body.detection).toMatchObject({ state: "failed" }), { timeout: 10_000, interval: 50 });
    const failed = await get(url, `/detections/${id}`);
    expect(failed.body).toMatchObject({ media: { id, mediaStatus: MediaStatus.Error }, detection: { jobId: id, state: "failed", error: { code: "DETECTION_FAILED", message: expect.stringContaining("truncated") } } });
    expect(failed.body.detection).not.toHaveProperty("detections");
  });

  it("a record whose run was in another process is polled by its status, without detections", async () => {
    const first = await startApp();
    const png = samplePng(30, 30, 43);
    const id = await computeMediaId(png);
    await tusUpload(first, png, "elsewhere.png");
    await vi.waitFor(async () => expect((await get(first, `/detections/${id}`)).body.detection).toMatchObject({ state: "completed", detections: expect.any(Array) }), { timeout: 10_000, interval: 50 });
    const second = await startApp();
    expect(await get(second, `/detections/${id}`)).toEqual({ status: 200, body: { media: expect.objectContaining({ id, mediaStatus: MediaStatus.AIProcessed }), detection: { jobId: id, state: "completed" } } });
  });
});
