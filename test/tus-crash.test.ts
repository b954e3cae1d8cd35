// kill -9 of a tus endpoint (test/fixtures/tus-child.ts, a process of its own) at each step of a
// finish, under either durability: a HEAD, the sweep or recovery in this process (the restarted
// endpoint, with the same setting) finishes the upload. What survives a crash of the process is
// the same under both; only a power cut tells them apart (test/durability.test.ts counts the syncs).
import { once } from "node:events";
import { readdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { computeMediaId, MediaStatus, recoverInterrupted, trackMediaProcessing } from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { startChild } from "./helpers/child.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "k".repeat(32);
const fixture = useFaultFixture({ sub: "alice", secret });

/** The media in the storage directories (not the partial uploads, nor the journal). */
const stored = async () => (await filesUnder(fixture.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));
/** A plain tus request of ours. */
const tusRequest = (url: string, method: string, bearer: string) => fetch(url, { method, headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${bearer}` } });
/** The record's status, once detection has had its say. */
const statusOf = (id: string) => fixture.fake.records.get(id)?.mediaStatus;

/** Uploads with tus-js-client; resolves with the final response (its status and Media-Id). */
function tusUpload(endpoint: string, bytes: Buffer, name: string, uploadUrl?: string) {
  return new Promise<{ status: number; mediaId: string | null }>((resolve, reject) => {
    const upload = new Upload(bytes, {
      endpoint,
      retryDelays: [0, 50, 100, 200],
      metadata: { filename: name },
      headers: { authorization: `Bearer ${fixture.token}` },
      ...(uploadUrl ? { uploadUrl } : {}),
      onSuccess: ({ lastResponse }) => resolve({ status: lastResponse.getStatus(), mediaId: lastResponse.getHeader("Media-Id") ?? null }),
      onError: reject,
    });
    upload.start();
  });
}

describe.each(["process", "power"] as const)("a tus endpoint killed with SIGKILL (durability %s)", (durability) => {
  let tus: TusIntake;
  let endpoint: string;
  let closeServer: () => Promise<void>;

  // The endpoint that takes over in this process: detection as a host starts it.
  beforeEach(async () => {
    const client = fixture.client({ retry: false });
    const detection = trackMediaProcessing(async () => ["detected"], { client, directories: fixture.directories, durability });
    tus = createTusIntake({
      directories: fixture.directories,
      client,
      auth: { verify: { secret } },
      sweepIntervalMs: 0,
      durability,
      onMediaIntaken: async (media, { token: caller }) => ({ detections: await detection.with(caller ? { token: caller } : {})(media) }),
    });
    const started = await startServer((req, res) => void tus.handle(req, res));
    endpoint = `${started.url}/files`;
    closeServer = started.close;
  });
  afterEach(async () => {
    await closeServer();
    await tus.close();
  });

  /** Partial uploads and their metadata, not the markers of finished ones. */
  const partials = async () => (await readdir(tus.uploadsDir)).filter((name) => !name.endsWith(".media"));

  it("a process killed between the last byte and the record: a HEAD, or the sweep, finishes the upload", async () => {
    for (const finishBy of ["head", "sweep"] as const) {
      const png = samplePng(64, 64, finishBy === "head" ? 11 : 12);
      const id = await computeMediaId(png);
      const child = startChild(join(import.meta.dirname, "fixtures/tus-child.ts"), { directories: fixture.directories, annotationsUrl: fixture.service.url, secret, crashBeforePlace: true, durability });
      const [, url] = (await child.match(/^LISTENING (.+)$/)) as RegExpMatchArray;
      const exited = once(child.child, "exit");
      const error = await new Promise((resolve) => {
        const upload = new Upload(png, { endpoint: `${url}/files`, retryDelays: [], metadata: { filename: "crash.png" }, headers: { authorization: `Bearer ${fixture.token}` }, onSuccess: resolve, onError: resolve });
        upload.start();
      });
      expect(error).toBeInstanceOf(Error);
      expect((await exited)[1]).toBe("SIGKILL");
      const [uploadId] = (await partials()).filter((name) => !name.endsWith(".json"));
      expect(uploadId).toMatch(/^[0-9a-f]{32}$/);
      expect(await stored()).not.toContain(`images/${id}.png`);
      if (finishBy === "head") {
        const head = await fetch(`${endpoint}/${uploadId}`, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${fixture.token}` } });
        expect(head.status).toBe(200);
        expect(head.headers.get("media-id")).toBe(id);
        expect(head.headers.get("upload-offset")).toBe(String(png.length));
      } else {
        // Untouched for longer than a finish takes: left by a crash.
        const old = new Date(Date.now() - 60_000);
        await utimes(join(tus.uploadsDir, uploadId as string), old, old);
        expect((await tus.sweep()).finished).toEqual([uploadId]);
      }
      expect(await stored()).toContain(`images/${id}.png`);
      // Recorded for the uploader, even when finished in the background with the service's token.
      expect(fixture.fake.records.get(id)).toMatchObject({ id, userId: "alice", path: join(fixture.directories.imagesDir, `${id}.png`) });
      // And its detection started by whatever finished it.
      expect(statusOf(id)).toBe(MediaStatus.AIProcessed);
      expect(await partials()).toEqual([]);
    }
  });

  it("kill -9 while the record is created: the resume's HEAD answers 503 until recovery made it, then complete with Media-Id; detection starts; nothing stray", async () => {
    const png = samplePng(64, 48, 21);
    const id = await computeMediaId(png);
    const child = startChild(join(import.meta.dirname, "fixtures/tus-child.ts"), { directories: fixture.directories, annotationsUrl: fixture.service.url, secret, detect: true, durability });
    const [, url] = (await child.match(/^LISTENING (.+)$/)) as RegExpMatchArray;
    // The file is placed; the process dies while its record's POST is on the way (never applied).
    fixture.intercept = (request) => {
      if (request.method !== "POST") return undefined;
      fixture.intercept = undefined;
      void child.kill();
      return "hang";
    };
    const exited = once(child.child, "exit");
    let uploadUrl = "";
    const error = await new Promise((resolve) => {
      const upload = new Upload(png, {
        endpoint: `${url}/files`,
        retryDelays: [],
        metadata: { filename: "placed.png" },
        headers: { authorization: `Bearer ${fixture.token}` },
        onUploadUrlAvailable: () => (uploadUrl = upload.url ?? ""),
        onSuccess: resolve,
        onError: resolve,
      });
      upload.start();
    });
    expect(error).toBeInstanceOf(Error);
    expect((await exited)[1]).toBe("SIGKILL");
    const uploadId = uploadUrl.split("/").pop() as string;
    expect(await stored()).toEqual([`images/${id}.png`]);
    expect(fixture.fake.records.has(id)).toBe(false);
    const resumeUrl = `${endpoint}/${uploadId}`;
    const early = await tusRequest(resumeUrl, "HEAD", fixture.token);
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toMatch(/^\d+$/);
    expect((await recoverInterrupted({ client: fixture.client(), directories: fixture.directories })).recordsCreated).toEqual([id]);
    // The client's resume: a HEAD, answered complete.
    const resumed = await tusUpload(endpoint, png, "placed.png", resumeUrl);
    expect(resumed).toMatchObject({ status: 200, mediaId: id });
    expect(fixture.fake.records.get(id)).toMatchObject({ userId: "alice", mediaStatus: MediaStatus.AIProcessed });
    expect(await partials()).toEqual([]);
  });

  it.each(["head", "sweep"] as const)("kill -9 during the AIProcessing write that follows the record: the %s finishes the upload and starts its detection", async (finishBy) => {
    const png = samplePng(64, 48, finishBy === "head" ? 22 : 23);
    const id = await computeMediaId(png);
    const child = startChild(join(import.meta.dirname, "fixtures/tus-child.ts"), { directories: fixture.directories, annotationsUrl: fixture.service.url, secret, detect: true, durability });
    const [, url] = (await child.match(/^LISTENING (.+)$/)) as RegExpMatchArray;
    fixture.intercept = (request) => {
      if (request.method !== "PUT") return undefined;
      fixture.intercept = undefined;
      void child.kill();
      return "hang";
    };
    const exited = once(child.child, "exit");
    const failed = await new Promise((resolve) => {
      const upload = new Upload(png, { endpoint: `${url}/files`, retryDelays: [], metadata: { filename: "started.png" }, headers: { authorization: `Bearer ${fixture.token}` }, onSuccess: resolve, onError: resolve });
      upload.start();
    });
    expect(failed).toBeInstanceOf(Error);
    expect((await exited)[1]).toBe("SIGKILL");
    expect(statusOf(id)).toBe(MediaStatus.New);
    const [marker] = (await readdir(tus.uploadsDir)).filter((name) => name.endsWith(".media"));
    const uploadId = (marker as string).replace(/\.media$/, "");
    if (finishBy === "head") {
      const head = await tusRequest(`${endpoint}/${uploadId}`, "HEAD", fixture.token);
      expect(head.status).toBe(200);
      expect(head.headers.get("media-id")).toBe(id);
    } else {
      const old = new Date(Date.now() - 60_000);
      await utimes(join(tus.uploadsDir, marker as string), old, old);
      expect((await tus.sweep()).finished).toEqual([uploadId]);
    }
    expect(statusOf(id)).toBe(MediaStatus.AIProcessed);
    expect(await partials()).toEqual([]);
  });
});
