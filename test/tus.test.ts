// media-intake/tus with tus-js-client, the reference client, over real HTTP on loopback: real
// files in temp directories, a fake annotations service of ours, faults injected in our server.
import { once } from "node:events";
import { readFile, readdir, utimes, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { SignJWT } from "jose";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, intakeMedia, MediaType, type StorageDirectories } from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { startChild } from "./helpers/child.ts";
import type { FakeAnnotations } from "./helpers/fake-annotations.ts";
import { startFaultFixture } from "./helpers/fault-fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "k".repeat(32);
const auth = { verify: { secret } };
let root: string;
let directories: StorageDirectories;
let fake: FakeAnnotations;
let service: { url: string; close: () => Promise<void> };
let token: string;
let tus: TusIntake;
let endpoint: string;
let closeServer: () => Promise<void>;
/** A test's fault, run before the intake sees a request. Returns true when it answered itself. */
let fault: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;

const MiB = 2 ** 20;

async function startTus(options: Partial<Parameters<typeof createTusIntake>[0]> = {}) {
  tus = createTusIntake({ directories, client: createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false }), auth, sweepIntervalMs: 0, ...options });
  const started = await startServer((req, res) => {
    if (fault?.(req, res)) return;
    void tus.handle(req, res);
  });
  endpoint = `${started.url}/files`;
  closeServer = started.close;
}

beforeEach(async () => {
  fault = undefined;
  ({ root, directories, fake, service, token } = await startFaultFixture(() => undefined, { sub: "alice", secret }));
  await startTus();
});
afterEach(async () => {
  await closeServer();
  await tus.close();
  await service.close();
});

interface Finished {
  uploadUrl: string;
  status: number;
  body: { media?: Record<string, unknown>; error?: { code: string } };
  mediaId: string | null;
}

/** Uploads with tus-js-client; resolves with the final response, rejects with tus-js-client's error. */
function tusUpload(bytes: Buffer, name: string, options: { chunkSize?: number; token?: string | null; uploadUrl?: string; deferred?: boolean; retryDelays?: number[]; onUrl?: (url: string) => void } = {}) {
  return new Promise<Finished>((resolve, reject) => {
    const upload = new Upload(bytes, {
      endpoint,
      chunkSize: options.chunkSize ?? 4 * MiB,
      retryDelays: options.retryDelays ?? [0, 50, 100, 200],
      metadata: { filename: name, filetype: "application/octet-stream" },
      headers: options.token === null ? {} : { authorization: `Bearer ${options.token ?? token}` },
      ...(options.uploadUrl ? { uploadUrl: options.uploadUrl } : {}),
      ...(options.deferred ? { uploadLengthDeferred: true } : {}),
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: () => options.onUrl?.(upload.url ?? ""),
      onSuccess: ({ lastResponse }) => {
        const text = lastResponse.getBody() as string | undefined;
        resolve({ uploadUrl: upload.url ?? "", status: lastResponse.getStatus(), body: text ? JSON.parse(text) : {}, mediaId: lastResponse.getHeader("Media-Id") ?? null });
      },
      onError: reject,
    });
    upload.start();
  });
}

/** The status of a failed tus-js-client upload, and the JSON body our server answered. */
function failure(error: unknown): { status: number | undefined; code: string | undefined } {
  const response = (error as { originalResponse?: { getStatus(): number; getBody(): string } }).originalResponse;
  const body = response?.getBody();
  return { status: response?.getStatus(), code: body ? (JSON.parse(body) as { error?: { code: string } }).error?.code : undefined };
}

/** An upload created by tus-js-client whose first PATCH was cut at once: its URL, nothing stored. */
async function createdOnly(bytes: Buffer, name: string): Promise<string> {
  let url = "";
  fault = (req, res) => {
    if (req.method !== "PATCH") return false;
    res.socket?.destroy();
    return true;
  };
  await tusUpload(bytes, name, { retryDelays: [], onUrl: (u) => (url = u) }).catch(() => {});
  fault = undefined;
  expect(url).toMatch(/\/files\/[0-9a-f]{32}$/);
  return url;
}

/** The media in the storage directories (not the partial uploads, nor the journal). */
const stored = async () => (await filesUnder(root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));
/** Partial uploads and their metadata, not the markers of finished ones. */
const partials = async () => (await readdir(tus.uploadsDir)).filter((name) => !name.endsWith(".media"));

describe("createTusIntake", () => {
  it("a 64 MiB upload in 4 MiB chunks, its connection killed mid-way, resumes to one file and one record", async () => {
    const mp4 = sampleMp4(64 * MiB, 7);
    const id = await computeMediaId(mp4);
    // The connection of the PATCH that carries the 21st MiB is destroyed mid-body, once.
    let received = 0;
    let cut = false;
    fault = (req) => {
      if (req.method !== "PATCH" || cut) return false;
      // Watches the body as the server reads it (a listener of our own would drain it).
      const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
      req.emit = ((event: string, ...args: unknown[]) => {
        if (event === "data") received += (args[0] as Buffer).length;
        if (!cut && received > 21 * MiB) {
          cut = true;
          req.socket.destroy();
        }
        return emit(event, ...args);
      }) as typeof req.emit;
      return false;
    };
    const patches: number[] = [];
    const seen = fault;
    fault = (req, res) => {
      if (req.method === "PATCH") patches.push(Number(req.headers["upload-offset"]));
      return seen(req, res);
    };
    const done = await tusUpload(mp4, "drone flight.MP4");
    expect(cut).toBe(true);
    // Resumed from where the server had the bytes, not from zero.
    expect(patches[0]).toBe(0);
    expect(patches.some((offset) => offset > 0 && offset % (4 * MiB) !== 0)).toBe(true);
    expect(done.status).toBe(200);
    expect(done.mediaId).toBe(id);
    const path = join(directories.videosDir, `${id}.mp4`);
    expect(done.body.media).toMatchObject({ id, path, name: "drone flight.MP4", mediaType: MediaType.Video, userId: "alice", created: true, fileCreated: true });
    expect(await stored()).toEqual([`videos/${id}.mp4`]);
    expect((await readFile(path)).equals(mp4)).toBe(true);
    expect(fake.records.get(id)).toMatchObject({ id, path, mediaType: MediaType.Video, userId: "alice" });
    expect(fake.log.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(await partials()).toEqual([]);
  });

  it.each([
    ["no token", null, 401, "AUTH_TOKEN_INVALID"],
    ["a token signed with another key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA", 401, "AUTH_TOKEN_INVALID"],
  ])("refuses %s at creation, before a byte is stored", async (_, bad, status, code) => {
    const error = await tusUpload(samplePng(), "a.png", { token: bad }).catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status, code });
    expect(await partials()).toEqual([]);
    expect(fake.log).toEqual([]);
  });

  it("refuses an unsupported type (415) and an Upload-Length over maxBytes (413) at creation", async () => {
    expect(failure(await tusUpload(Buffer.from("hello"), "notes.txt").catch((e: unknown) => e))).toEqual({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
    await closeServer();
    await startTus({ maxBytes: 1 * MiB });
    expect(failure(await tusUpload(sampleMp4(2 * MiB), "big.mp4").catch((e: unknown) => e))).toEqual({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(await partials()).toEqual([]);
  });

  it("refuses content that is not what its name says after the first chunk, and keeps nothing", async () => {
    const patches: number[] = [];
    fault = (req) => {
      if (req.method === "PATCH") patches.push(Number(req.headers["upload-offset"]));
      return false;
    };
    const error = await tusUpload(sampleMp4(12 * MiB), "holiday.jpg").catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status: 415, code: "MEDIA_CONTENT_MISMATCH" });
    expect(patches).toEqual([0]);
    expect(await partials()).toEqual([]);
    expect(await stored()).toEqual([]);
    expect(fake.log).toEqual([]);
  });

  it("caps a deferred length at maxBytes as the bytes arrive, and keeps nothing", async () => {
    await closeServer();
    await startTus({ maxBytes: 3 * MiB });
    const error = await tusUpload(sampleMp4(8 * MiB), "long.mp4", { deferred: true, chunkSize: 2 * MiB }).catch((e: unknown) => e);
    expect(failure(error)).toMatchObject({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(await partials()).toEqual([]);
    expect(await stored()).toEqual([]);
  });

  it("a deferred length within the limit finishes like any upload", async () => {
    const png = samplePng(300, 200, 3);
    const done = await tusUpload(png, "cam.png", { deferred: true, chunkSize: 64 * 1024 });
    expect(done.body.media).toMatchObject({ id: await computeMediaId(png), mediaType: MediaType.Image });
  });

  it("only the creator may resume an upload: another user's token is refused with 403", async () => {
    const url = await createdOnly(sampleMp4(1 * MiB), "clip.mp4");
    const bob = await new SignJWT({ sub: "bob" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    const head = await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${bob}` } });
    expect(head.status).toBe(403);
    const resumed = await tusUpload(sampleMp4(1 * MiB), "clip.mp4", { uploadUrl: url });
    expect(resumed.uploadUrl).toBe(url);
    expect(resumed.body.media).toMatchObject({ userId: "alice" });
  });

  it("DELETE removes the upload and its metadata", async () => {
    const url = await createdOnly(sampleMp4(1 * MiB), "clip.mp4");
    expect(await partials()).toHaveLength(2);
    const response = await fetch(url, { method: "DELETE", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` } });
    expect(response.status).toBe(204);
    expect(await partials()).toEqual([]);
    expect((await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` } })).status).toBe(404);
  });

  it("an expired upload is refused (410) and the sweep removes it", async () => {
    await closeServer();
    await startTus({ expireAfterMs: 1_000 });
    let url = "";
    let patched = false;
    // One chunk lands, then the link dies for good.
    fault = (req, res) => {
      if (req.method !== "PATCH" || !patched) {
        if (req.method === "PATCH") patched = true;
        return false;
      }
      res.socket?.destroy();
      return true;
    };
    await tusUpload(sampleMp4(3 * MiB), "clip.mp4", { chunkSize: 1 * MiB, retryDelays: [], onUrl: (u) => (url = u) }).catch(() => {});
    const uploadId = url.split("/").pop() as string;
    // Created long enough ago: its metadata says so.
    const info = JSON.parse(await readFile(join(tus.uploadsDir, `${uploadId}.json`), "utf8")) as { creation_date: string };
    info.creation_date = new Date(Date.now() - 5_000).toISOString();
    await writeFile(join(tus.uploadsDir, `${uploadId}.json`), JSON.stringify(info));
    fault = undefined;
    expect((await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` } })).status).toBe(410);
    expect((await tus.sweep()).removed).toEqual([uploadId]);
    expect(await partials()).toEqual([]);
  });

  it("the same content through tus and through intakeMedia is one file and one record", async () => {
    const png = samplePng(120, 90, 5);
    const id = await computeMediaId(png);
    const first = await intakeMedia(png, { originalName: "a.png", token, auth, client: createAnnotationsClient({ baseUrl: service.url }), directories });
    const again = await tusUpload(png, "again.PNG", { chunkSize: 1000 });
    expect(again.body.media).toMatchObject({ id, path: first.path, created: false, fileCreated: false, name: "a.png" });
    expect(await stored()).toEqual([`images/${id}.png`]);
    expect(fake.log.filter((r) => r.method === "POST")).toHaveLength(2);
  });

  it("a final answer lost on the way: the client resumes, and the HEAD says complete with the media ID", async () => {
    const png = samplePng(200, 100, 9);
    const id = await computeMediaId(png);
    let lost = false;
    fault = (req, res) => {
      if (req.method !== "PATCH" || lost) return false;
      lost = true;
      // The upload finishes here, and the answer never reaches the client.
      res.write = () => true;
      res.end = (() => {
        res.socket?.destroy();
        return res;
      }) as typeof res.end;
      return false;
    };
    const done = await tusUpload(png, "lost.png");
    expect(lost).toBe(true);
    expect(done.mediaId).toBe(id);
    expect(done.status).toBe(200);
    expect(await stored()).toEqual([`images/${id}.png`]);
    expect(fake.log.filter((r) => r.method === "POST")).toHaveLength(1);
  });

  it("a process killed between the last byte and the record: a HEAD, or the sweep, finishes the upload", async () => {
    for (const finishBy of ["head", "sweep"] as const) {
      const png = samplePng(64, 64, finishBy === "head" ? 11 : 12);
      const id = await computeMediaId(png);
      const child = startChild(join(import.meta.dirname, "fixtures/tus-child.ts"), { directories, annotationsUrl: service.url, secret, crashBeforePlace: true });
      const [, url] = (await child.match(/^LISTENING (.+)$/)) as RegExpMatchArray;
      const exited = once(child.child, "exit");
      const error = await new Promise((resolve) => {
        const upload = new Upload(png, { endpoint: `${url}/files`, retryDelays: [], metadata: { filename: "crash.png" }, headers: { authorization: `Bearer ${token}` }, onSuccess: resolve, onError: resolve });
        upload.start();
      });
      expect(error).toBeInstanceOf(Error);
      expect((await exited)[1]).toBe("SIGKILL");
      const [uploadId] = (await partials()).filter((name) => !name.endsWith(".json"));
      expect(uploadId).toMatch(/^[0-9a-f]{32}$/);
      expect(await stored()).not.toContain(`images/${id}.png`);
      if (finishBy === "head") {
        const head = await fetch(`${endpoint}/${uploadId}`, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` } });
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
      expect(fake.records.get(id)).toMatchObject({ id, userId: "alice", path: join(directories.imagesDir, `${id}.png`) });
      expect(await partials()).toEqual([]);
    }
  });

  it("refuses an uploads directory on another file system than the storage directories", async () => {
    expect(() => createTusIntake({ directories, client: createAnnotationsClient({ baseUrl: service.url }), uploadsDir: "/dev/shm/media-intake-test-uploads" })).toThrow(
      /Expected `uploadsDir` \(\/dev\/shm\/media-intake-test-uploads\) on the same file system as `videosDir`/,
    );
  });
});
