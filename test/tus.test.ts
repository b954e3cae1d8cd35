// media-intake/tus with tus-js-client, the reference client, over real HTTP on loopback: real
// files in temp directories, a fake annotations service of ours, faults injected in our server.
import { readFile, readdir, statfs, writeFile } from "node:fs/promises";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import { join } from "node:path";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  computeMediaId,
  createAnnotationsClient,
  fileJournalFor,
  intakeMedia,
  JournalUnavailableError,
  type MediaJournal,
  MediaStatus,
  MediaType,
  trackMediaProcessing,
} from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { signToken, useFaultFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "k".repeat(32);
const auth = { verify: { secret } };
let tus: TusIntake;
let endpoint: string;
let closeServer: () => Promise<void>;
/** A test's fault, run before the intake sees a request. Returns true when it answered itself. */
let fault: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;

const MiB = 2 ** 20;

const fixture = useFaultFixture({ sub: "alice", secret });

async function startTus(options: Partial<Parameters<typeof createTusIntake>[0]> = {}) {
  const client = fixture.client({ retry: false });
  // Detection as a host starts it: the finish waits for the whole run here (the detector is instant).
  const detection = trackMediaProcessing(async () => ["detected"], { client, directories: fixture.directories });
  tus = createTusIntake({
    directories: fixture.directories,
    client,
    auth,
    sweepIntervalMs: 0,
    onMediaIntaken: async (media, { token: caller }) => ({ detections: await detection.with(caller ? { token: caller } : {})(media) }),
    ...options,
  });
  const started = await startServer((req, res) => {
    if (fault?.(req, res)) return;
    void tus.handle(req, res);
  });
  endpoint = `${started.url}/files`;
  closeServer = started.close;
}

beforeEach(async () => {
  fault = undefined;
  await startTus();
});
afterEach(async () => {
  await closeServer();
  await tus.close();
});

interface Finished {
  uploadUrl: string;
  status: number;
  body: { media?: Record<string, unknown>; error?: { code: string } };
  mediaId: string | null;
}

/** Uploads with tus-js-client; resolves with the final response, rejects with tus-js-client's error. */
function tusUpload(
  bytes: Buffer,
  name: string,
  options: { chunkSize?: number; token?: string | null; uploadUrl?: string; deferred?: boolean; withCreation?: boolean; retryDelays?: number[]; onUrl?: (url: string) => void } = {},
) {
  return new Promise<Finished>((resolve, reject) => {
    const upload = new Upload(bytes, {
      endpoint,
      chunkSize: options.chunkSize ?? 4 * MiB,
      retryDelays: options.retryDelays ?? [0, 50, 100, 200],
      metadata: { filename: name, filetype: "application/octet-stream" },
      headers: options.token === null ? {} : { authorization: `Bearer ${options.token ?? fixture.token}` },
      ...(options.uploadUrl ? { uploadUrl: options.uploadUrl } : {}),
      ...(options.deferred ? { uploadLengthDeferred: true } : {}),
      ...(options.withCreation ? { uploadDataDuringCreation: true } : {}),
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

/** A token of another user (or of alice, expiring at `exp`, in seconds). */
const tokenFor = (sub: string, exp: number | string = "5m") => signToken(sub, secret, exp);
/** A plain tus request of ours, for what tus-js-client never sends. */
const tusRequest = (url: string, method: string, bearer: string, headers: Record<string, string> = {}, body?: Buffer) =>
  fetch(url, { method, headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${bearer}`, ...headers }, ...(body ? { body: new Uint8Array(body) } : {}) });
/** The record's status, once detection has had its say. */
const statusOf = (id: string) => fixture.fake.records.get(id)?.mediaStatus;

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
const stored = async () => (await filesUnder(fixture.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));
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
    const path = join(fixture.directories.videosDir, `${id}.mp4`);
    expect(done.body.media).toMatchObject({ id, path, name: "drone flight.MP4", mediaType: MediaType.Video, userId: "alice", created: true, fileCreated: true });
    expect(await stored()).toEqual([`videos/${id}.mp4`]);
    expect((await readFile(path)).equals(mp4)).toBe(true);
    expect(fixture.fake.records.get(id)).toMatchObject({ id, path, mediaType: MediaType.Video, userId: "alice" });
    expect(fixture.fake.log.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(await partials()).toEqual([]);
  });

  it.each([
    ["no token", null, 401, "AUTH_TOKEN_INVALID"],
    ["a token signed with another key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA", 401, "AUTH_TOKEN_INVALID"],
  ])("refuses %s at creation, before a byte is stored", async (_, bad, status, code) => {
    const error = await tusUpload(samplePng(), "a.png", { token: bad }).catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status, code });
    expect(await partials()).toEqual([]);
    expect(fixture.fake.log).toEqual([]);
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
    expect(fixture.fake.log).toEqual([]);
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

  it("only the creator may resume, read or finish an upload, finished or not: another user gets 404, as for no upload", async () => {
    const mp4 = sampleMp4(1 * MiB);
    const url = await createdOnly(mp4, "clip.mp4");
    const bob = await tokenFor("bob");
    const patch = { "upload-offset": "0", "content-type": "application/offset+octet-stream" };
    for (const response of [await tusRequest(url, "HEAD", bob), await tusRequest(url, "PATCH", bob, patch, mp4)]) {
      expect(response.status).toBe(404);
      expect(response.headers.get("media-id")).toBeNull();
    }
    expect(await partials()).toHaveLength(2);
    const resumed = await tusUpload(mp4, "clip.mp4", { uploadUrl: url });
    expect(resumed.uploadUrl).toBe(url);
    expect(resumed.body.media).toMatchObject({ userId: "alice" });
    // Finished: its metadata is gone, its marker names the uploader.
    expect(await partials()).toEqual([]);
    const head = await tusRequest(url, "HEAD", bob);
    expect(head.status).toBe(404);
    expect(head.headers.get("media-id")).toBeNull();
    expect(head.headers.get("upload-length")).toBeNull();
    expect((await tusRequest(url, "PATCH", bob, { ...patch, "upload-offset": String(mp4.length) }, Buffer.alloc(0))).status).toBe(404);
    const own = await tusRequest(url, "HEAD", fixture.token);
    expect(own.status).toBe(200);
    expect(own.headers.get("media-id")).toBe(await computeMediaId(mp4));
  });

  it("a torn finish marker is no answer: the owner's HEAD gets 404 (never 500), and the sweep removes it", async () => {
    const png = samplePng(40, 30, 2);
    const done = await tusUpload(png, "torn.png");
    const uploadId = done.uploadUrl.split("/").pop() as string;
    const marker = join(tus.uploadsDir, `${uploadId}.media`);
    const whole = await readFile(marker, "utf8");
    expect(JSON.parse(whole)).toMatchObject({ mediaId: done.mediaId, userId: "alice" });
    // Half a marker, as a write cut by a power loss leaves it (ours are renamed into place whole).
    await writeFile(marker, whole.slice(0, whole.length >> 1));
    const head = await tusRequest(done.uploadUrl, "HEAD", fixture.token);
    expect(head.status).toBe(404);
    await tus.sweep();
    expect(await readdir(tus.uploadsDir)).toEqual([]);
  });

  it("DELETE removes the upload and its metadata", async () => {
    const url = await createdOnly(sampleMp4(1 * MiB), "clip.mp4");
    expect(await partials()).toHaveLength(2);
    const response = await fetch(url, { method: "DELETE", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${fixture.token}` } });
    expect(response.status).toBe(204);
    expect(await partials()).toEqual([]);
    expect((await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${fixture.token}` } })).status).toBe(404);
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
    expect((await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${fixture.token}` } })).status).toBe(410);
    expect((await tus.sweep()).removed).toEqual([uploadId]);
    expect(await partials()).toEqual([]);
  });

  it("the same content through tus and through intakeMedia is one file and one record", async () => {
    const png = samplePng(120, 90, 5);
    const id = await computeMediaId(png);
    const first = await intakeMedia(png, { originalName: "a.png", token: fixture.token, auth, client: createAnnotationsClient({ baseUrl: fixture.service.url }), directories: fixture.directories });
    const again = await tusUpload(png, "again.PNG", { chunkSize: 1000 });
    expect(again.body.media).toMatchObject({ id, path: first.path, created: false, fileCreated: false, name: "a.png" });
    expect(await stored()).toEqual([`images/${id}.png`]);
    expect(fixture.fake.log.filter((r) => r.method === "POST")).toHaveLength(2);
  });

  it("another user's upload and an upload that does not exist get the same 404, on every method", async () => {
    const url = await createdOnly(sampleMp4(2 * MiB), "mine.mp4");
    const missing = `${endpoint}/${"0".repeat(32)}`;
    const mallory = await tokenFor("mallory");
    const answer = async (target: string, method: string) => {
      const headers: Record<string, string> = method === "PATCH" ? { "content-type": "application/offset+octet-stream", "upload-offset": "0" } : {};
      const response = await tusRequest(target, method, mallory, headers, method === "PATCH" ? Buffer.from("x") : undefined);
      const id = target.split("/").pop() as string;
      const text = method === "HEAD" ? "" : (await response.text()).replace(id, "<id>");
      return { status: response.status, type: response.headers.get("content-type"), text };
    };
    for (const method of ["HEAD", "PATCH", "DELETE", "GET"]) {
      const theirs = await answer(url, method);
      expect(theirs.status, method).toBe(404);
      expect(await answer(missing, method), method).toEqual(theirs);
    }
    // Nothing changed: the owner resumes it.
    expect((await tusRequest(url, "HEAD", fixture.token)).status).toBe(200);
  });

  it("an upload's URL spelled any other way (a trailing slash, another case, extra segments) is no upload: another user cannot pass the owner check by it", async () => {
    const url = await createdOnly(sampleMp4(2 * MiB), "mine.mp4");
    const { origin, pathname } = new URL(url);
    const id = pathname.split("/").pop() as string;
    const mallory = await tokenFor("mallory");
    /** A request with its path sent exactly as written (fetch would normalise it). */
    const raw = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${origin}${path}`, { method, headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${mallory}`, ...headers } }, (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk)).on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on("error", reject);
        req.end(body);
      });
    const head = await tusRequest(url, "HEAD", fixture.token);
    const offset = head.headers.get("upload-offset");
    for (const path of [`/files/${id}/`, `/FILES/${id}`, `/files/x/${id}`, `/files//${id}`, `/files/${id}/.`, `/files/${id.toUpperCase()}`]) {
      for (const method of ["HEAD", "PATCH", "DELETE", "GET"]) {
        const patch: Record<string, string> = method === "PATCH" ? { "content-type": "application/offset+octet-stream", "upload-offset": String(offset) } : {};
        const answer = await raw(method, path, patch, method === "PATCH" ? Buffer.alloc(1000, 7) : undefined);
        expect(answer.status, `${method} ${path}`).toBe(404);
        expect(answer.body, `${method} ${path}`).not.toMatch(/mine\.mp4|alice|bWluZS5tcDQ/);
      }
    }
    // The upload is untouched, and still its owner's.
    const after = await tusRequest(url, "HEAD", fixture.token);
    expect(after.status).toBe(200);
    expect(after.headers.get("upload-offset")).toBe(offset);
  });

  it("an upload is never read back: GET answers 405, unfinished or finished, and the server goes on serving", async () => {
    const url = await createdOnly(sampleMp4(2 * MiB), "unfinished.mp4");
    const unfinished = await tusRequest(url, "GET", fixture.token);
    expect(unfinished.status).toBe(405);
    expect(unfinished.headers.get("allow")).toBe("HEAD, PATCH, DELETE, OPTIONS");
    expect(((await unfinished.json()) as { error: { code: string } }).error.code).toBe("METHOD_NOT_ALLOWED");
    const png = samplePng(50, 40, 21);
    const done = await tusUpload(png, "finished.png", { withCreation: true });
    for (let i = 0; i < 3; i++) expect((await tusRequest(done.uploadUrl, "GET", fixture.token)).status).toBe(405);
    expect((await tusRequest(done.uploadUrl, "HEAD", fixture.token)).headers.get("media-id")).toBe(await computeMediaId(png));
  });

  it("a second uploader of the same content gets the content's answer without the first uploader's user ID and name", async () => {
    const png = samplePng(64, 48, 11);
    const id = await computeMediaId(png);
    const first = await tusUpload(png, "alice-secret-name.png");
    expect(first.body.media).toMatchObject({ id, userId: "alice", name: "alice-secret-name.png" });
    const second = await tusUpload(png, "mine.png", { token: await tokenFor("mallory") });
    expect(second.mediaId).toBe(id);
    expect(second.body.media).toMatchObject({ id, created: false, fileCreated: false });
    expect(second.body.media).not.toHaveProperty("userId");
    expect(second.body.media).not.toHaveProperty("name");
    expect(JSON.stringify(second.body)).not.toMatch(/alice/);
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
    expect(fixture.fake.log.filter((r) => r.method === "POST")).toHaveLength(1);
  });

  it("a final PATCH whose token expired meanwhile: a HEAD with a fresh token finishes the upload and starts its detection", async () => {
    const png = samplePng(120, 80, 24);
    const id = await computeMediaId(png);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const shortLived = await tokenFor("alice", exp);
    const created = await tusRequest(endpoint, "POST", shortLived, { "upload-length": String(png.length), "upload-metadata": `filename ${Buffer.from("expiring.png").toString("base64")}` });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get("location") as string, endpoint).href;
    // The last (and only) PATCH: its first half is in, then the token expires, then the rest.
    const patch = request(url, {
      method: "PATCH",
      headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${shortLived}`, "upload-offset": "0", "content-type": "application/offset+octet-stream", "content-length": String(png.length) },
    });
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      patch.on("response", (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
      patch.on("error", reject);
    });
    // Past the token check: the server reads the body.
    const reading = new Promise<void>((resolve) => {
      fault = (req) => {
        if (req.method !== "PATCH") return false;
        const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
        req.emit = ((event: string, ...args: unknown[]) => {
          if (event === "data") resolve();
          return emit(event, ...args);
        }) as typeof req.emit;
        return false;
      };
    });
    patch.write(png.subarray(0, png.length >> 1));
    await reading;
    // Until the clock is past the token's exp (an instant, not a guess at how long work takes).
    while (Date.now() <= exp * 1000 + 20) await new Promise((resolve) => setTimeout(resolve, exp * 1000 + 25 - Date.now()));
    patch.end(png.subarray(png.length >> 1));
    const last = await answered;
    expect(last.status).toBe(401);
    expect(statusOf(id)).toBeUndefined();
    // The client comes back with a fresh token: tus-js-client's resume is a HEAD.
    const resumed = await tusUpload(png, "expiring.png", { uploadUrl: url });
    expect(resumed).toMatchObject({ status: 200, mediaId: id });
    expect(fixture.fake.records.get(id)).toMatchObject({ userId: "alice", mediaStatus: MediaStatus.AIProcessed });
    expect(await partials()).toEqual([]);
  });

  it("a final PATCH whose record had no known outcome (503): once the record lands, the resume's HEAD finishes the upload and starts its detection", async () => {
    const png = samplePng(90, 70, 25);
    const id = await computeMediaId(png);
    fixture.intercept = (request) => {
      if (request.method !== "POST") return undefined;
      fixture.intercept = undefined;
      return { status: 503 };
    };
    let url = "";
    const error = await tusUpload(png, "pending.png", { retryDelays: [], onUrl: (u) => (url = u) }).catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status: 503, code: "MEDIA_RECORD_PENDING" });
    // The journal's background settling creates it.
    await vi.waitFor(() => expect(fixture.fake.records.has(id)).toBe(true), { timeout: 30_000, interval: 20 });
    expect(statusOf(id)).toBe(MediaStatus.New);
    const resumed = await tusUpload(png, "pending.png", { uploadUrl: url });
    expect(resumed).toMatchObject({ status: 200, mediaId: id });
    expect(statusOf(id)).toBe(MediaStatus.AIProcessed);
    expect(await partials()).toEqual([]);
  });

  it.each([
    ["one request", 8 * MiB],
    ["a first chunk, then PATCHes", 256 * 1024],
  ])("creation-with-upload (uploadDataDuringCreation) of a whole file in %s succeeds with the finish answer", async (_, chunkSize) => {
    const mp4 = sampleMp4(1 * MiB, 26 + chunkSize);
    const id = await computeMediaId(mp4);
    const done = await tusUpload(mp4, "at once.mp4", { withCreation: true, chunkSize });
    expect(done.status).toBe(chunkSize >= mp4.length ? 201 : 200);
    expect(done.uploadUrl).toMatch(/\/files\/[0-9a-f]{32}$/);
    expect(done.mediaId).toBe(id);
    expect(done.body).toMatchObject({ media: { id, userId: "alice", mediaType: MediaType.Video }, detections: ["detected"] });
    expect(statusOf(id)).toBe(MediaStatus.AIProcessed);
    expect(await stored()).toEqual([`videos/${id}.mp4`]);
    expect(await partials()).toEqual([]);
  });

  it("one rule for Upload-Length: at most maxBytes and at most what the uploads volume holds, however many digits (413), never 201 for more", async () => {
    const { blocks, bsize } = await statfs(tus.uploadsDir);
    const volume = BigInt(blocks) * BigInt(bsize);
    const create = (length: string) => tusRequest(endpoint, "POST", fixture.token, { "upload-length": length, "upload-metadata": `filename ${Buffer.from("huge.mp4").toString("base64")}` });
    for (const length of ["100000000000000000000", String(2n ** 53n + 1n), String(2n ** 40n * 1024n), String(volume + 1n)]) {
      const response = await create(length);
      expect(response.status, length).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("MEDIA_TOO_LARGE");
    }
    expect(await partials()).toEqual([]);
    expect((await create(String(volume))).status).toBe(201);
    for (const length of ["12x", "-1", "1e3", "0x10", "1.5", "12, 13", "00100", "+100"]) {
      const response = await create(length);
      expect(response.status, length).toBe(400);
      expect(response.headers.get("content-type"), length).toMatch(/^application\/json/);
      expect(((await response.json()) as { error: { code: string; message: string } }).error, length).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^Upload-Length .* is not a length/) });
    }
    await closeServer();
    await startTus({ maxBytes: 5 * MiB });
    expect((await create(String(5 * MiB + 1))).status).toBe(413);
    expect((await create(String(5 * MiB))).status).toBe(201);
  });

  it("while the journal cannot be written, a finish answers 503 with Retry-After at once and keeps the upload; the client's retry finishes it", async () => {
    // An injected journal that fails as the journal engines do when their folder (or Redis)
    // cannot be written; as root, chmod would not stop the file journal from writing.
    const real = fileJournalFor(fixture.directories);
    let down = true;
    const journal: MediaJournal = {
      location: real.location,
      add: (entry) => (down ? Promise.reject(new JournalUnavailableError("Adding a journal entry", real.location, Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" }))) : real.add(entry)),
      list: (id) => real.list(id),
      claim: (record) => real.claim(record),
      sweep: () => real.sweep(),
      close: () => real.close(),
    };
    await closeServer();
    await startTus({ journal });
    const png = samplePng(70, 50, 27);
    const id = await computeMediaId(png);
    let url = "";
    const error = await tusUpload(png, "later.png", { retryDelays: [], onUrl: (u) => (url = u) }).catch((e: unknown) => e);
    const retryAfter = (error as { originalResponse?: { getHeader(name: string): string | undefined } }).originalResponse?.getHeader("Retry-After") ?? null;
    expect(failure(error)).toEqual({ status: 503, code: "JOURNAL_UNAVAILABLE" });
    expect(retryAfter).toMatch(/^\d+$/);
    expect(await stored()).toEqual([]);
    expect(await partials()).toHaveLength(2);
    // A HEAD meanwhile gets the same answer, never a 500.
    const head = await tusRequest(url, "HEAD", fixture.token);
    expect(head.status).toBe(503);
    expect(head.headers.get("retry-after")).toMatch(/^\d+$/);
    down = false;
    const resumed = await tusUpload(png, "later.png", { uploadUrl: url });
    expect(resumed).toMatchObject({ status: 200, mediaId: id });
    expect(await stored()).toEqual([`images/${id}.png`]);
    expect(await partials()).toEqual([]);
  });

  it("refuses an uploads directory on another file system than the storage directories", async () => {
    expect(() => createTusIntake({ directories: fixture.directories, client: createAnnotationsClient({ baseUrl: fixture.service.url }), uploadsDir: "/dev/shm/media-intake-test-uploads" })).toThrow(
      /createTusIntake: expected `uploadsDir` \(\/dev\/shm\/media-intake-test-uploads\) on the same file system as `videosDir`/,
    );
  });
});
