// End to end over real HTTP: the Express example, the dev annotations server, real files.
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, recoverInterrupted } from "../src/index.ts";
import { startServer } from "./helpers/http-server.ts";
import { useDevFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "express-example-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
let app: { url: string; close: () => Promise<void> };

async function startApp(options: { annotationsUrl?: string; maxUploadBytes?: number; directories?: typeof fixture.directories } = {}) {
  const express = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: options.annotationsUrl ?? fixture.annotations.url, token: fixture.serviceToken, retry: { retries: 1, baseDelayMs: 1 } }),
    directories: options.directories ?? fixture.directories,
    auth: { verify: { secret } },
    ...(options.maxUploadBytes ? { maxUploadBytes: options.maxUploadBytes } : {}),
  });
  const server = express.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeEach(async () => {
  app = await startApp();
});
afterEach(() => app.close());

async function upload(name: string, bytes: Uint8Array, options: { route?: string; auth?: string | null; field?: string } = {}) {
  const form = new FormData();
  form.append(options.field ?? "file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const headers: Record<string, string> = {};
  const auth = options.auth === undefined ? `Bearer ${fixture.token}` : options.auth;
  if (auth) headers.authorization = auth;
  const response = await fetch(`${app.url}${options.route ?? "/detect"}`, { method: "POST", body: form, headers });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function history(id: string): Promise<number[]> {
  const response = await fetch(`${fixture.annotations.url}/api/media/${id}/history`, { headers: { authorization: `Bearer ${fixture.token}` } });
  return ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}

/** The files in the storage directories (not the annotations database beside them). */
async function storedFiles(): Promise<string[]> {
  return (await filesUnder(fixture.root)).filter((path) => path.startsWith("videos/") || path.startsWith("images/"));
}

describe("POST /detect", () => {
  it("an image becomes a stored file and a record New -> AIProcessing -> AIProcessed", async () => {
    const png = samplePng(40, 30, 2);
    const { status, body } = await upload("Street Cam.PNG", png);
    const id = await computeMediaId(png);
    expect(status).toBe(200);
    expect(body.media).toMatchObject({ id, name: "Street Cam.PNG", path: join(fixture.directories.imagesDir, `${id}.png`), mediaType: 2, mediaStatus: 3, userId: "alice" });
    expect(body.detections.length).toBeGreaterThan(0);
    expect(await readFile(body.media.path)).toEqual(Buffer.from(png));
    expect(await history(id)).toEqual([1, 2, 3]);
  });

  it("a video likewise, with the same detections for the same bytes", async () => {
    const mp4 = sampleMp4(1 << 20, 3);
    const first = await upload("clip.mp4", mp4);
    expect(first.status).toBe(200);
    expect(first.body.media).toMatchObject({ mediaType: 1, mediaStatus: 3, path: join(fixture.directories.videosDir, `${await computeMediaId(mp4)}.mp4`) });
    const again = await upload("same.MP4", mp4);
    expect(again.body.detections).toEqual(first.body.detections);
    expect(again.body.media).toMatchObject({ id: first.body.media.id, created: false, name: "clip.mp4" });
    expect(await storedFiles()).toEqual([relative(fixture.root, first.body.media.path)]);
    expect(await history(first.body.media.id)).toEqual([1, 2, 3, 2, 3]);
  });

  it("a truncated PNG ends in Error with 422", async () => {
    const truncated = samplePng(40, 30, 5).subarray(0, 200);
    const { status, body } = await upload("broken.png", truncated);
    expect(status).toBe(422);
    expect(body.error.code).toBe("DETECTION_FAILED");
    expect(body.error.message).toMatch(/truncated/);
    const id = await computeMediaId(truncated);
    expect(await history(id)).toEqual([1, 2, 6]);
  });

  it.each([
    ["no token", { auth: null }, 401, "AUTH_TOKEN_INVALID"],
    ["a token signed with another key", { auth: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA" }, 401, "AUTH_TOKEN_INVALID"],
    ["no file field", { field: "other" }, 400, "NO_FILE"],
  ])("answers %s with the right status", async (_, options, status, code) => {
    const result = await upload("a.png", samplePng(), options);
    expect(result).toMatchObject({ status, body: { error: { code } } });
    expect(await storedFiles()).toEqual([]);
  });

  it("answers 400 to a body that is not a form", async () => {
    const response = await fetch(`${app.url}/detect`, { method: "POST", body: "{}", headers: { authorization: `Bearer ${fixture.token}`, "content-type": "application/json" } });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("BAD_FORM");
  });

  it("answers 415 to an unsupported type and to content that is not what its name says", async () => {
    expect(await upload("notes.txt", Buffer.from("hello"))).toMatchObject({ status: 415, body: { error: { code: "UNSUPPORTED_MEDIA_TYPE" } } });
    expect(await upload("cat.jpg", sampleMp4(10_000))).toMatchObject({ status: 415, body: { error: { code: "MEDIA_CONTENT_MISMATCH" } } });
    expect(await storedFiles()).toEqual([]);
  });

  it("answers 413 past MAX_UPLOAD_BYTES, keeping nothing", async () => {
    await app.close();
    app = await startApp({ maxUploadBytes: 100_000 });
    expect(await upload("big.mp4", sampleMp4(200_000))).toMatchObject({ status: 413, body: { error: { code: "MEDIA_TOO_LARGE" } } });
    expect(await storedFiles()).toEqual([]);
  });

  it("answers 503 MEDIA_RECORD_PENDING with the media ID when the annotations service is down or failing, keeping the file", async () => {
    const down = await startServer(() => {});
    await down.close();
    await app.close();
    app = await startApp({ annotationsUrl: down.url });
    const png = samplePng(10, 10, 4);
    const id = await computeMediaId(png);
    expect(await upload("a.png", png)).toMatchObject({ status: 503, body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: id } } });
    const failing = await startServer((_, response) => response.writeHead(500).end());
    try {
      await app.close();
      app = await startApp({ annotationsUrl: failing.url });
      expect(await upload("a.png", png)).toMatchObject({ status: 503, body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: id } } });
    } finally {
      await failing.close();
    }
    expect((await storedFiles()).filter((path) => path.startsWith("images/"))).toEqual([`images/${id}.png`]);
    // The service is back: the record lands, the journal empties, one file stays.
    await app.close();
    app = await startApp();
    expect(await upload("a.png", png)).toMatchObject({ status: 200, body: { media: { id, path: join(fixture.directories.imagesDir, `${id}.png`), mediaStatus: 3 } } });
    // What the example's startRecovery does every few seconds:
    const report = await recoverInterrupted({ client: createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.serviceToken }), directories: fixture.directories });
    expect(report).toMatchObject({ alreadyConsistent: [id], failed: [] });
    expect(await storedFiles()).toEqual([`images/${id}.png`]);
  });

  it("answers 502 when the service refuses the record for good, keeping no file", async () => {
    const refusing = await startServer((request, response) => {
      // The contract's "no such media" (a problem body): no record relies on the file.
      if (request.method === "GET") response.writeHead(404, { "content-type": "application/problem+json" }).end('{"title":"Not Found"}');
      else response.writeHead(422, { "content-type": "application/problem+json" }).end('{"title":"Name taken"}');
    });
    try {
      await app.close();
      app = await startApp({ annotationsUrl: refusing.url });
      expect(await upload("a.png", samplePng(10, 10, 5))).toMatchObject({ status: 502, body: { error: { code: "ANNOTATIONS_HTTP_ERROR" } } });
    } finally {
      await refusing.close();
    }
    expect(await storedFiles()).toEqual([]);
  });

  it("a client that disconnects mid-upload leaves nothing behind", async () => {
    const boundary = "----media-intake-test";
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
    const { port } = new URL(app.url);
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/detect",
      headers: { authorization: `Bearer ${fixture.token}`, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": 50_000_000 },
    });
    req.on("error", () => {});
    req.write(head);
    req.write(sampleMp4(3 << 20));
    // Cut once the server has stored some of it: its temp file holds bytes (so the check below
    // cannot pass on an upload that never arrived).
    const partialBytes = async () => {
      let bytes = 0;
      for (const path of (await storedFiles()).filter((file) => file.endsWith(".partial"))) bytes += (await stat(join(fixture.root, path)).catch(() => ({ size: 0 }))).size;
      return bytes;
    };
    await vi.waitFor(async () => expect(await partialBytes()).toBeGreaterThan(0), { timeout: 15_000, interval: 20 });
    req.destroy();
    // The server notices the disconnect asynchronously: wait for the cleanup.
    await vi.waitFor(async () => expect(await storedFiles()).toEqual([]), { timeout: 15_000, interval: 50 });
  });

  it("50 concurrent uploads, some identical: every one succeeds, twins with the same detections", async () => {
    const contents = Array.from({ length: 20 }, (_, i) => samplePng(24, 24, i));
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => upload(`img-${i}.png`, contents[i % 20] as Uint8Array)));
    // A duplicate in flight joins its twin's detection or runs after it: never "busy".
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 50 }, () => 200));
    const byId = new Map<string, string>();
    for (const result of results) {
      const seen = byId.get(result.body.media.id);
      if (seen) expect(JSON.stringify(result.body.detections)).toBe(seen);
      byId.set(result.body.media.id, JSON.stringify(result.body.detections));
    }
    expect(byId.size).toBe(20);
    const files = await storedFiles();
    expect(files).toHaveLength(20);
    const client = createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.token });
    for (const file of files) {
      const path = join(fixture.root, file);
      const id = await computeMediaId(path);
      const record = await client.media.get(id);
      expect(record).toMatchObject({ id, path, mediaStatus: 3, userId: "alice" });
    }
  });
});

describe("a record that names a file of another folder (the volume moved)", () => {
  it("a re-upload is detected on the file it stored under the current folders, on /detect and /detect-multer; a rerun is a clear 409", async () => {
    const mp4 = sampleMp4(120_000, 21);
    const id = await computeMediaId(mp4);
    expect((await upload("m6.mp4", mp4)).status).toBe(200);
    const oldPath = join(fixture.directories.videosDir, `${id}.mp4`);
    await app.close();
    await rm(fixture.directories.videosDir, { recursive: true });
    const moved = { videosDir: join(fixture.root, "moved", "videos"), imagesDir: join(fixture.root, "moved", "images") };
    app = await startApp({ directories: moved });
    for (const route of ["/detect", "/detect-multer"]) {
      const { status, body } = await upload("m6.mp4", mp4, { route });
      expect(status).toBe(200);
      expect(body.media).toMatchObject({ id, path: oldPath, file: join(moved.videosDir, `${id}.mp4`) });
      expect(body.detections.length).toBeGreaterThan(0);
      expect(await readFile(join(moved.videosDir, `${id}.mp4`))).toEqual(Buffer.from(mp4));
    }
    const rerun = await fetch(`${app.url}/detect/${id}`, { method: "POST", headers: { authorization: `Bearer ${fixture.token}` } });
    expect(rerun.status).toBe(409);
    expect(await rerun.json()).toMatchObject({ error: { code: "MEDIA_FILE_MISSING", mediaId: id } });
  });
});

describe("other routes", () => {
  it("POST /detect/:mediaId re-runs detection, GET /media/:mediaId reads the record, /healthz answers", async () => {
    const { body } = await upload("a.png", samplePng(16, 16, 8));
    const rerun = await fetch(`${app.url}/detect/${body.media.id.toUpperCase()}`, { method: "POST", headers: { authorization: `Bearer ${fixture.token}` } });
    expect(rerun.status).toBe(200);
    expect(await history(body.media.id)).toEqual([1, 2, 3, 2, 3]);
    const read = await fetch(`${app.url}/media/${body.media.id}`, { headers: { authorization: `Bearer ${fixture.token}` } });
    expect(await read.json()).toMatchObject({ id: body.media.id, mediaStatus: 3 });
    expect((await fetch(`${app.url}/media/00000000000000aa`, { headers: { authorization: `Bearer ${fixture.token}` } })).status).toBe(404);
    expect((await fetch(`${app.url}/media/nope`, { headers: { authorization: `Bearer ${fixture.token}` } })).status).toBe(400);
    expect(await (await fetch(`${app.url}/healthz`)).json()).toEqual({ status: "ok" });
  });

  it("POST /detect-multer goes through the multer engine", async () => {
    const png = samplePng(20, 20, 1);
    const { status, body } = await upload("m.png", png, { route: "/detect-multer" });
    expect(status).toBe(200);
    expect(body.media).toMatchObject({ id: await computeMediaId(png), mediaStatus: 3, userId: "alice" });
  });

  it("POST /detect-multer keeps multer's fileSize limit, answered with the same code as /detect, keeping nothing", async () => {
    await app.close();
    app = await startApp({ maxUploadBytes: 100_000 });
    const result = await upload("big.mp4", sampleMp4(300_000), { route: "/detect-multer" });
    expect(result).toMatchObject({ status: 413, body: { error: { code: "MEDIA_TOO_LARGE" } } });
    expect(await upload("big.mp4", sampleMp4(300_000))).toMatchObject({ status: 413, body: { error: { code: "MEDIA_TOO_LARGE" } } });
    // The aborted intake removes its temp file once multer has let go of the stream.
    await vi.waitFor(async () => expect(await storedFiles()).toEqual([]));
  });
});

describe("npm run example:express", () => {
  it("starts from the environment, with a dev annotations server in-process, and logs its address", async () => {
    const { spawn } = await import("node:child_process");
    const { createInterface } = await import("node:readline");
    const child = spawn(process.execPath, [join(import.meta.dirname, "../examples/express/server.ts")], {
      env: { ...process.env, PORT: "0", VIDEOS_DIR: fixture.directories.videosDir, IMAGES_DIR: fixture.directories.imagesDir, JWT_SECRET: secret },
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
          const match = line.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/);
          if (match?.[1]) resolve(match[1]);
        });
        child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
      });
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });
      const form = new FormData();
      form.append("file", new Blob([samplePng(12, 12, 3) as Uint8Array<ArrayBuffer>]), "x.png");
      const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
      expect(response.status).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("with REDIS_URL and no ANNOTATIONS_URL, warns at start that workers need ANNOTATIONS_URL", async () => {
    const { startChild } = await import("./helpers/child.ts");
    const { createServer } = await import("node:net");
    // A port nobody listens on: the web side starts while Redis is out of reach.
    const probe = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => probe.once("listening", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const example = startChild(join(import.meta.dirname, "../examples/express/server.ts"), null, {
      PORT: "0",
      VIDEOS_DIR: fixture.directories.videosDir,
      IMAGES_DIR: fixture.directories.imagesDir,
      JWT_SECRET: secret,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      ANNOTATIONS_URL: "",
    });
    await example.match(/"msg":"listening on /);
    const warning = example.lines().find((line) => line.includes("ANNOTATIONS_URL is not"));
    expect(JSON.parse(warning ?? "{}")).toMatchObject({ level: 40, msg: expect.stringContaining("reachable by no worker. Set ANNOTATIONS_URL") });
    await example.kill();
  });
});
