import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  AnnotationsAuthError,
  AnnotationsHttpError,
  AnnotationsUnavailableError,
  AuthTokenError,
  computeMediaId,
  createAnnotationsClient,
  intakeMedia,
  storeMedia,
  MediaRecordPendingError,
  type MediaStatusChange,
  MediaStatusUpdateError,
  MediaType,
  trackMediaProcessing,
  UnsupportedMediaTypeError,
} from "../src/index.ts";
import { createFakeAnnotations, type FakeRequest, startFakeAnnotationsServer } from "./helpers/fake-annotations.ts";
import { startServer } from "./helpers/http-server.ts";
import { annotationsHandlers, MOCK_BASE_URL } from "./helpers/msw-annotations.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const fixture = useFaultFixture({ sub: "user-7" });

// The client's own token is the service's: background settling uses it.
const client = () => fixture.client({ retry: { retries: 2, baseDelayMs: 1 } });
const wire = () => fixture.fake.log.map((r) => `${r.method} ${r.path}${r.method === "GET" ? "" : ` ${r.body}`}`);

const filesLeft = () => filesUnder(fixture.root);

describe("intakeMedia and trackMediaProcessing: the upload-to-record flow", () => {
  it("stores, creates the record with the JWT's user, then New -> AIProcessing -> AIProcessed on the wire", async () => {
    const mp4 = sampleMp4(200_000);
    const media = await intakeMedia(Readable.from([mp4]), { originalName: "Clip.MP4", token: `Bearer ${fixture.token}`, client: client(), directories: fixture.directories });
    const id = await computeMediaId(mp4);
    expect(media).toEqual({
      id,
      name: "Clip.MP4",
      path: join(fixture.directories.videosDir, `${id}.mp4`),
      mediaType: MediaType.Video,
      mediaStatus: 1,
      userId: "user-7",
      created: true,
      fileCreated: true,
      detected: expect.objectContaining({ mime: "video/mp4" }),
      size: mp4.length,
      file: join(fixture.directories.videosDir, `${id}.mp4`),
    });
    expect(await readFile(media.path)).toEqual(mp4);

    const changes: MediaStatusChange[] = [];
    const detect = trackMediaProcessing(async (m, _context, threshold: number) => ({ id: m.id, threshold }), {
      client: client(),
      token: fixture.token,
      onStatusChange: (change) => changes.push(change),
    });
    expect(await detect(media, 0.5)).toEqual({ id, threshold: 0.5 });
    expect(wire()).toEqual([
      `POST /api/media {"Id":"${id}","Name":"Clip.MP4","Path":${JSON.stringify(media.path)},"MediaType":1,"MediaStatus":1,"UserId":"user-7"}`,
      `PUT /api/media/${id}/status {"MediaStatus":2}`,
      `PUT /api/media/${id}/status {"MediaStatus":3}`,
    ]);
    expect(fixture.fake.records.get(id)?.mediaStatus).toBe(3);
    expect(changes.map(({ from, to }) => [from, to])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(changes.every((change) => Object.isFrozen(change) && change.at instanceof Date)).toBe(true);
    expect(await filesLeft()).toEqual([relative(fixture.root, media.path)]);
  });

  it("on failure sets Error and rethrows the very error the function threw", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const failure = new Error("detector crashed");
    const detect = trackMediaProcessing(() => Promise.reject(failure), { client: client(), token: fixture.token });
    await expect(detect(media.id)).rejects.toBe(failure);
    expect(wire().slice(1)).toEqual([`PUT /api/media/${media.id}/status {"MediaStatus":2}`, `PUT /api/media/${media.id}/status {"MediaStatus":6}`]);
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6);
    // A re-run may start again from Error.
    await trackMediaProcessing(() => "ok", { client: client(), token: fixture.token })(media.id);
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
  });

  it("a re-upload of the same bytes returns the existing record and keeps one file", async () => {
    const png = samplePng(32, 32, 4);
    const first = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    await trackMediaProcessing(() => 1, { client: client(), token: fixture.token })(first);
    const again = await intakeMedia(Readable.from([png]), { originalName: "again.png", token: fixture.token, client: client(), directories: fixture.directories });
    expect(again).toMatchObject({ id: first.id, path: first.path, name: "a.png", mediaStatus: 3, created: false, fileCreated: false });
    expect(await filesLeft()).toEqual([relative(fixture.root, first.path)]);
  });

  it("a bad token fails before a byte is written or a request is sent", async () => {
    for (const bad of [undefined, "garbage", `Bearer ${fixture.token.slice(0, -4)}x`]) {
      const error = await intakeMedia(samplePng(), {
        originalName: "a.png",
        token: bad,
        client: client(),
        directories: fixture.directories,
        auth: { verify: { secret: "x".repeat(32) } },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthTokenError);
    }
    expect(fixture.fake.log).toEqual([]);
    await expect(stat(fixture.root).then(() => readdir(fixture.root))).resolves.toEqual([]);
  });

  it("an unsupported name fails before a byte is written", async () => {
    await expect(intakeMedia(samplePng(), { originalName: "a.txt", token: fixture.token, client: client(), directories: fixture.directories })).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    expect(fixture.fake.log).toEqual([]);
    expect(await filesLeft()).toEqual([]);
  });

  it("create refused with 401 by the service leaves no file", async () => {
    // The caller's token is refused; the service's own (the client's) still reads records.
    const refusing = await startFakeAnnotationsServer(createFakeAnnotations({ acceptToken: (t) => t === "service-token" }));
    try {
      const api = createAnnotationsClient({ baseUrl: refusing.url, token: "service-token", retry: { retries: 2, baseDelayMs: 1 } });
      const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: api, directories: fixture.directories }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsAuthError);
      expect((error as Error).message).toMatch(/^POST \/api\/media: 401 Unauthorized/);
      // Whether a record relies on the file is read with the service's token, in the background.
      await vi.waitFor(async () => expect(await filesLeft()).toEqual([]), { timeout: 10_000 });
      expect(refusing.fake.records.size).toBe(0);
    } finally {
      await refusing.close();
    }
  });

  it("create answering 500 after its retries keeps the file, and the record lands once the service answers", async () => {
    let failing = true;
    fixture.intercept = (request) => (failing && request.method === "POST" ? { status: 500 } : undefined);
    const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    expect((error as Error).message).toMatch(/^Creating the record of media [0-9a-f]{16}: the outcome is not known \(POST \/api\/media: 500 Internal Server Error \(after 3 attempts\)/);
    const { id, path } = error as MediaRecordPendingError;
    expect(await readFile(path)).toEqual(samplePng());
    failing = false;
    await vi.waitFor(() => expect(fixture.fake.records.get(id)).toMatchObject({ path, userId: "user-7", mediaStatus: 1 }), { timeout: 10_000 });
    await vi.waitFor(async () => expect(await readdir(join(fixture.directories.videosDir, ".media-intake-journal"))).not.toContainEqual(expect.stringMatching(/\.(log|json)$/)));
  });

  it("create failing with the service down keeps the file for the record to come", async () => {
    const down = await startServer(() => {});
    await down.close();
    const api = createAnnotationsClient({ baseUrl: down.url, retry: { retries: 1, baseDelayMs: 1 } });
    const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: api, directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    expect((error as Error).cause).toBeInstanceOf(AnnotationsUnavailableError);
    expect(await filesLeft()).toContainEqual(relative(fixture.root, (error as MediaRecordPendingError).path));
  });

  it("a refused create leaves a file that a record names alone", async () => {
    const png = samplePng(20, 20, 1);
    const first = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    fixture.intercept = (request) => (request.method === "POST" ? { status: 400 } : undefined);
    await expect(intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories })).rejects.toBeInstanceOf(AnnotationsHttpError);
    expect(await readFile(first.path)).toEqual(png);
  });

  it("a refused create removes a stored file nothing relies on, even one this upload did not write", async () => {
    const png = samplePng(20, 20, 2);
    const orphan = await storeMedia(png, { originalName: "a.png", directories: fixture.directories });
    fixture.intercept = (request) => (request.method === "POST" ? { status: 400 } : undefined);
    await expect(intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories })).rejects.toBeInstanceOf(AnnotationsHttpError);
    await expect(readFile(orphan.path)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("trackMediaProcessing", () => {
  async function stored() {
    return intakeMedia(samplePng(16, 16, Math.floor(Math.random() * 200)), { originalName: "p.png", token: fixture.token, client: client(), directories: fixture.directories });
  }

  it("does not run the function when AIProcessing cannot be recorded", async () => {
    let ran = false;
    const detect = trackMediaProcessing(() => (ran = true), { client: client(), token: fixture.token });
    const error = await detect("00000000000000ff").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaStatusUpdateError);
    expect((error as Error).message).toMatch(/^Recording status AIProcessing for media 00000000000000ff: PUT \/api\/media\/00000000000000ff\/status: 404 Not Found/);
    expect(ran).toBe(false);
  });

  it("keeps the result when AIProcessed cannot be recorded", async () => {
    const media = await stored();
    fixture.intercept = (request) => (request.body === '{"MediaStatus":3}' ? hangWithoutAnswer(request) : undefined);
    const detect = trackMediaProcessing(() => ({ boxes: 2 }), { client: createAnnotationsClient({ baseUrl: fixture.service.url, retry: false, timeoutMs: 200 }), token: fixture.token });
    const error = await detect(media).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaStatusUpdateError);
    expect(error).toMatchObject({ id: media.id, to: 3, hasResult: true, result: { boxes: 2 } });
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(2);
  });

  it("attaches a failed Error update to the function's own error, never in its place", async () => {
    const media = await stored();
    fixture.intercept = (request) => (request.body === '{"MediaStatus":6}' ? hangWithoutAnswer(request) : undefined);
    const failure = new Error("model OOM");
    const detect = trackMediaProcessing(() => Promise.reject(failure), { client: createAnnotationsClient({ baseUrl: fixture.service.url, retry: false, timeoutMs: 200 }), token: fixture.token });
    const error = await detect(media).catch((e: unknown) => e);
    expect(error).toBe(failure);
    expect((error as { mediaStatusUpdateError?: unknown }).mediaStatusUpdateError).toBeInstanceOf(AnnotationsUnavailableError);
  });

  it("an abort during the function sets Error and rejects with the abort reason", async () => {
    const media = await stored();
    const controller = new AbortController();
    const reason = new Error("client went away");
    const detect = trackMediaProcessing(
      (_m, { signal }) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason as Error));
        }),
      { client: client(), token: fixture.token, signal: controller.signal },
    );
    setTimeout(() => controller.abort(reason), 50);
    await expect(detect(media)).rejects.toBe(reason);
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6));
  });

  it("a duplicate call joins the run in progress and gets its result", async () => {
    const media = await stored();
    let calls = 0;
    let finish!: (value: string) => void;
    const detect = trackMediaProcessing(() => {
      calls += 1;
      return new Promise<string>((resolve) => (finish = resolve));
    }, { client: client(), token: fixture.token });
    const first = detect(media);
    await vi.waitFor(() => expect(calls).toBe(1));
    const second = detect(media.id);
    finish("boxes");
    expect(await Promise.all([first, second])).toEqual(["boxes", "boxes"]);
    expect(calls).toBe(1);
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
  });

  it("isFinalFailure: a try that will be repeated leaves the record in AIProcessing; the last records Error", async () => {
    const media = await stored();
    const failure = new Error("GPU busy");
    let last = false;
    const detect = trackMediaProcessing(() => Promise.reject(failure), { client: client(), token: fixture.token, isFinalFailure: () => last });
    await expect(detect(media)).rejects.toBe(failure);
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(2);
    last = true;
    await expect(detect(media)).rejects.toBe(failure);
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6);
    expect(fixture.fake.log.filter((r) => r.method === "PUT").map((r) => r.body)).toEqual(['{"MediaStatus":2}', '{"MediaStatus":2}', '{"MediaStatus":6}']);
  });

  it("ignores a throwing onStatusChange", async () => {
    const media = await stored();
    const detect = trackMediaProcessing(() => "done", {
      client: client(),
      token: fixture.token,
      onStatusChange: () => {
        throw new Error("listener bug");
      },
    });
    expect(await detect(media)).toBe("done");
  });

  it("journals the run while it lives, and removes the entry after", async () => {
    const media = await stored();
    const folder = join(fixture.directories.videosDir, ".media-intake-journal");
    let during: unknown[] = [];
    const detect = trackMediaProcessing(
      async () => {
        // What the file on disk holds while the run lives: the run's entry, in this process's log.
        const logs = (await readdir(folder)).filter((name) => name.endsWith(".log"));
        during = (await Promise.all(logs.map((name) => readFile(join(folder, name), "utf8"))))
          .flatMap((text) => text.split("\n").filter(Boolean))
          .map((line) => (JSON.parse(line) as { e?: unknown }).e);
      },
      { client: client(), token: fixture.token, directories: fixture.directories },
    );
    await detect(media);
    expect(during).toEqual([expect.objectContaining({ kind: "run", id: media.id, state: "active" })]);
    expect((await readdir(folder)).filter((name) => name.endsWith(".log") || name.endsWith(".json"))).toEqual([]);
  });
});

/** Records the request as seen but never answers it: the client's attempt times out. */
function hangWithoutAnswer(request: FakeRequest): "hang" {
  fixture.fake.log.push(request);
  return "hang";
}

describe("the same flow against the msw handlers", () => {
  const mockFake = createFakeAnnotations();
  const mock = setupServer(...annotationsHandlers(mockFake));
  beforeAll(() => mock.listen({ onUnhandledFrame: "bypass" }));
  afterAll(() => mock.close());

  it("New -> AIProcessing -> Error, in that order on the wire", async () => {
    const api = createAnnotationsClient({ baseUrl: MOCK_BASE_URL, retry: false });
    const media = await intakeMedia(samplePng(8, 8, 9), { originalName: "x.png", token: fixture.token, client: api, directories: fixture.directories });
    const failure = new TypeError("bad frame");
    await expect(trackMediaProcessing(() => { throw failure; }, { client: api, token: fixture.token })(media)).rejects.toBe(failure);
    expect(mockFake.log.map((r) => `${r.method} ${r.body}`)).toEqual([
      expect.stringMatching(/^POST \{"Id":"[0-9a-f]{16}","Name":"x.png",.*"MediaStatus":1,"UserId":"user-7"\}$/),
      'PUT {"MediaStatus":2}',
      'PUT {"MediaStatus":6}',
    ]);
    expect(mockFake.records.get(media.id)?.mediaStatus).toBe(6);
  });
});
