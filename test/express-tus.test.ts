// The Express example's resumable route (/files) with tus-js-client over real HTTP: a cut upload
// resumed ends exactly like the multipart upload of the same file, with the same auth and limits.
import { readFile } from "node:fs/promises";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import { join, relative } from "node:path";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { startServer } from "./helpers/http-server.ts";
import { signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const secret = "express-tus-secret-0123456789abcdef";
const MiB = 2 ** 20;
let token: string;
const started: Array<{ close: () => Promise<void> }> = [];

interface Service {
  url: string;
  root: string;
  annotations: DevAnnotationsServer;
  fault?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** The example on a fresh data root with its own dev annotations server. */
async function startService(options: { maxUploadBytes?: number; detector?: () => Promise<[]> } = {}): Promise<Service> {
  const root = await makeTempDir();
  const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  const serviceToken = await signToken("detections-service", secret, "5m");
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotations.url, token: serviceToken }),
    directories: storageDirectoriesIn(root),
    auth: { verify: { secret } },
    ...(options.maxUploadBytes ? { maxUploadBytes: options.maxUploadBytes } : {}),
    ...(options.detector ? { detector: options.detector } : {}),
  });
  const service: Service = { url: "", root, annotations };
  const server = await startServer((req, res) => {
    service.fault?.(req, res);
    app(req, res);
  });
  service.url = server.url;
  started.push(server, annotations);
  return service;
}

beforeEach(async () => {
  token = await signToken("alice", secret, "5m");
});
afterEach(async () => {
  for (const one of started.splice(0)) await one.close();
});

function tusUpload(service: Service, bytes: Buffer, name: string, auth: string | null = `Bearer ${token}`, more: { withCreation?: boolean; uploadUrl?: string } = {}) {
  return new Promise<{ status: number; body: Record<string, any> }>((resolve, reject) => {
    const upload = new Upload(bytes, {
      endpoint: `${service.url}/files`,
      ...(more.uploadUrl ? { uploadUrl: more.uploadUrl } : {}),
      ...(more.withCreation ? { uploadDataDuringCreation: true } : {}),
      chunkSize: more.withCreation ? 64 * MiB : 2 * MiB,
      retryDelays: [0, 50, 100],
      metadata: { filename: name },
      headers: auth ? { authorization: auth } : {},
      onSuccess: ({ lastResponse }) => resolve({ status: lastResponse.getStatus(), body: lastResponse.getBody() ? JSON.parse(lastResponse.getBody() as string) : {} }),
      onError: reject,
    });
    upload.start();
  });
}

async function multipart(service: Service, bytes: Buffer, name: string) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${service.url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const auth = () => ({ authorization: `Bearer ${token}` });
async function record(service: Service, id: string) {
  return (await (await fetch(`${service.url}/media/${id}`, { headers: auth() })).json()) as Record<string, any>;
}
async function history(service: Service, id: string): Promise<number[]> {
  const response = await fetch(`${service.annotations.url}/api/media/${id}/history`, { headers: auth() });
  return ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}
const media = async (service: Service) => (await filesUnder(service.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));

describe("POST /files (tus)", () => {
  it("an upload cut mid-way and resumed ends exactly like the multipart upload of the same file", async () => {
    const mp4 = sampleMp4(9 * MiB, 21);
    const id = await computeMediaId(mp4);
    const resumable = await startService();
    // The third PATCH's connection dies mid-body.
    let patches = 0;
    const offsets: number[] = [];
    let heads = 0;
    resumable.fault = (req) => {
      if (req.method === "HEAD") heads += 1;
      if (req.method === "PATCH") offsets.push(Number(req.headers["upload-offset"]));
      if (req.method === "PATCH" && ++patches === 3) {
        const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
        let seen = 0;
        req.emit = ((event: string, ...args: unknown[]) => {
          if (event === "data" && (seen += (args[0] as Buffer).length) > MiB) req.socket.destroy();
          return emit(event, ...args);
        }) as typeof req.emit;
      }
    };
    const finished = await tusUpload(resumable, mp4, "Survey 07.mp4");
    // Resumed (a HEAD for the offset) from where the server had the bytes, mid-chunk.
    expect(heads).toBeGreaterThanOrEqual(1);
    expect(offsets.some((offset) => offset % (2 * MiB) !== 0)).toBe(true);
    expect(finished.status).toBe(200);
    expect(finished.body).toMatchObject({ media: { id, userId: "alice", mediaType: 1 }, detection: { jobId: id, poll: `/detections/${id}` } });
    await vi.waitFor(async () => expect((await record(resumable, id)).mediaStatus).toBe(MediaStatus.AIProcessed), { timeout: 10_000, interval: 50 });

    const plain = await startService();
    const direct = await multipart(plain, mp4, "Survey 07.mp4");
    expect(direct.status).toBe(200);
    const [viaTus, viaForm] = [await record(resumable, id), await record(plain, id)];
    const comparable = (service: Service, r: Record<string, any>) => ({ id: r.id, name: r.name, mediaType: r.mediaType, mediaStatus: r.mediaStatus, userId: r.userId, path: relative(service.root, r.path) });
    expect(comparable(resumable, viaTus)).toEqual(comparable(plain, viaForm));
    expect(await history(resumable, id)).toEqual(await history(plain, id));
    expect(await history(resumable, id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
    expect(await media(resumable)).toEqual(await media(plain));
    expect((await readFile(join(resumable.root, `videos/${id}.mp4`))).equals(mp4)).toBe(true);
  });

  it("the same content through /files and through /detect is one file and one record", async () => {
    const service = await startService();
    const png = samplePng(90, 60, 13);
    const id = await computeMediaId(png);
    const viaTus = await tusUpload(service, png, "a.png");
    expect(viaTus.body.media).toMatchObject({ id, created: true });
    await vi.waitFor(async () => expect((await record(service, id)).mediaStatus).toBe(MediaStatus.AIProcessed), { timeout: 10_000, interval: 50 });
    const viaForm = await multipart(service, png, "b.PNG");
    expect(viaForm.body.media).toMatchObject({ id, created: false, name: "a.png" });
    expect(await media(service)).toEqual([`images/${id}.png`]);
  });

  it("another user's upload of the same content through /files leaves the record alone and offers no poll of it", async () => {
    const service = await startService();
    const png = samplePng(90, 60, 14);
    const id = await computeMediaId(png);
    expect((await multipart(service, png, "alice.png")).body.media).toMatchObject({ id, created: true, mediaStatus: MediaStatus.AIProcessed });
    const bob = `Bearer ${await signToken("bob", secret, "5m")}`;
    const again = await tusUpload(service, png, "bob.png", bob);
    expect(again.body.media).toMatchObject({ id, created: false });
    expect(again.body.media).not.toHaveProperty("userId");
    expect(again.body).toEqual({ media: expect.anything(), detection: {} });
    // Any run the upload had started would have moved the record before its answer came.
    expect(await history(service, id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
  });

  it("a whole file sent with its creation (uploadDataDuringCreation) succeeds with the media; the answer comes once detection has started", async () => {
    let release = () => {};
    const held = new Promise<[]>((resolve) => (release = () => resolve([])));
    const service = await startService({ detector: () => held });
    const png = samplePng(80, 60, 31);
    const id = await computeMediaId(png);
    const done = await tusUpload(service, png, "at once.png", `Bearer ${token}`, { withCreation: true });
    expect(done.status).toBe(201);
    expect(done.body).toMatchObject({ media: { id, userId: "alice" }, detection: { jobId: id, poll: `/detections/${id}` } });
    // Started (AIProcessing recorded) before the answer, not yet ended: the detector is held.
    expect(await history(service, id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing]);
    release();
    await vi.waitFor(async () => expect((await record(service, id)).mediaStatus).toBe(MediaStatus.AIProcessed), { timeout: 10_000, interval: 50 });
    expect(await media(service)).toEqual([`images/${id}.png`]);
  });

  it("an upload whose last PATCH failed (its token expired meanwhile) is finished by the resume's HEAD, and its detection runs", async () => {
    const service = await startService();
    const png = samplePng(100, 70, 32);
    const id = await computeMediaId(png);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const shortLived = await signToken("alice", secret, exp);
    const created = await fetch(`${service.url}/files`, {
      method: "POST",
      headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${shortLived}`, "upload-length": String(png.length), "upload-metadata": `filename ${Buffer.from("late.png").toString("base64")}` },
    });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get("location") as string, service.url).href;
    // Past the token check, the server reads the body: then the token expires, then the rest comes.
    const reading = new Promise<void>((resolve) => {
      service.fault = (req) => {
        if (req.method !== "PATCH") return;
        const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
        req.emit = ((event: string, ...args: unknown[]) => {
          if (event === "data") resolve();
          return emit(event, ...args);
        }) as typeof req.emit;
      };
    });
    const patch = request(url, {
      method: "PATCH",
      headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${shortLived}`, "upload-offset": "0", "content-type": "application/offset+octet-stream", "content-length": String(png.length) },
    });
    const status = new Promise<number>((resolve, reject) => {
      patch.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      patch.on("error", reject);
    });
    patch.write(png.subarray(0, png.length >> 1));
    await reading;
    // Until the clock is past the token's exp (an instant, not a guess at how long work takes).
    while (Date.now() <= exp * 1000 + 20) await new Promise((resolve) => setTimeout(resolve, exp * 1000 + 25 - Date.now()));
    patch.end(png.subarray(png.length >> 1));
    expect(await status).toBe(401);
    service.fault = undefined;
    const resumed = await tusUpload(service, png, "late.png", `Bearer ${token}`, { uploadUrl: url });
    expect(resumed.status).toBe(200);
    await vi.waitFor(async () => expect((await record(service, id)).mediaStatus).toBe(MediaStatus.AIProcessed), { timeout: 10_000, interval: 50 });
    expect(await history(service, id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
  });

  it("has the auth and limits of /detect: 401 without a token, 415 for a type it does not take, 413 past MAX_UPLOAD_BYTES", async () => {
    const service = await startService({ maxUploadBytes: MiB });
    const status = (error: unknown) => (error as { originalResponse?: { getStatus(): number } }).originalResponse?.getStatus();
    expect(status(await tusUpload(service, samplePng(), "a.png", null).catch((e: unknown) => e))).toBe(401);
    expect(status(await tusUpload(service, Buffer.from("hi"), "notes.txt").catch((e: unknown) => e))).toBe(415);
    expect(status(await tusUpload(service, sampleMp4(2 * MiB), "big.mp4").catch((e: unknown) => e))).toBe(413);
    expect(await filesUnder(service.root).then((files) => files.filter((f) => f.startsWith("videos/") || f.startsWith("images/")))).toEqual([]);
  });
});
