// uploadMedia (media-intake/browser), the whole flow of a page's row, against one real service on
// loopback (helpers/browser-service.ts): the library's tus endpoint with the dev annotations
// server, the possession routes holding what it stored, detection polls as scripted. Each state
// in order, the upload skipped for content the service holds, pause, cancel and refusals.
import { Upload } from "tus-js-client";
import { beforeEach, describe, expect, it } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { computeMediaId, type TusUploadClass, type UploadMediaOptions, UploadRequestError, type UploadState, uploadMedia } from "../src/browser/index.ts";
import { flow, MiB, memoryUrlStorage, useBrowserService } from "./helpers/browser-service.ts";

const service = useBrowserService();
const TusUpload: TusUploadClass = Upload;
const fileOf = (bytes: Uint8Array, name: string) => new File([bytes as Uint8Array<ArrayBuffer>], name);
const completed = (id: string) => ({ status: 200, body: { media: { id, mediaStatus: 3 }, detection: { jobId: id, state: "completed", detections: [{ label: "boat" }] } } });

/** uploadMedia with the usual options over `options`, and the states it went through. */
function start(file: File, options: Partial<UploadMediaOptions> = {}) {
  const states: UploadState[] = [];
  const upload = uploadMedia(file, {
    endpoint: service.endpoint,
    possessionUrl: service.wire.url,
    token: service.dev.token,
    Upload: TusUpload,
    chunkSize: MiB,
    retryDelays: [],
    urlStorage: memoryUrlStorage(),
    intervalMs: 1,
    onState: (state) => states.push(state),
    ...options,
  });
  return { upload, states };
}

const possessionRequests = () => service.wire.seen.filter(({ path }) => path.startsWith("/possession")).length;

describe("uploadMedia", () => {
  let bytes: Buffer;
  let id: string;
  beforeEach(async () => {
    bytes = sampleMp4(2 * MiB, 11);
    id = await computeMediaId(fileOf(bytes, "x"));
    service.wire.polls = [{ status: 200, body: { media: { id }, detection: { jobId: id, state: "active" } } }, completed(id)];
  });

  it("new content: hashing, checking (refused: not held), uploading, processing, done, with the final answer", async () => {
    const progress: number[] = [];
    const { upload, states } = start(fileOf(bytes, "boat.mp4"), { onProgress: (sent) => progress.push(sent) });
    expect(await upload.mediaId).toBe(id);
    const answer = await upload.done;
    expect(answer).toEqual({ media: { id, mediaStatus: 3 }, detection: { jobId: id, state: "completed", detections: [{ label: "boat" }] }, detections: [{ label: "boat" }], skipped: false });
    expect(states).toEqual(["hashing", "checking", "uploading", "processing", "done"]);
    expect(possessionRequests()).toBe(2);
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`]);
    expect(service.wire.seen.filter(({ path }) => path === `/detections/${id}`)).toHaveLength(2);
    expect(progress.at(-1)).toBe(bytes.length);
  });

  it("content the service holds, under another name: checking, then the service's answer, no byte uploaded", async () => {
    await start(fileOf(bytes, "boat.mp4")).upload.done;
    service.tusSeen = [];
    service.wire.polls = [completed(id)];
    service.wire.mode = "queued";
    const { upload, states } = start(fileOf(bytes, "copy of boat.mp4"));
    expect(await upload.done).toMatchObject({ media: { id }, detection: { state: "completed" }, skipped: true });
    expect(states).toEqual(["hashing", "checking", "processing", "done"]);
    expect(service.tusSeen).toEqual([]);
    service.wire.mode = "answer";
    const again = start(fileOf(bytes, "again.mp4"));
    expect(await again.upload.done).toMatchObject({ media: { id }, detections: [{ label: "held" }], skipped: true });
    expect(again.states).toEqual(["hashing", "checking", "done"]);
  });

  it("without a possession URL, or with one the service does not serve (404): straight to the upload", async () => {
    const plain = start(fileOf(bytes, "boat.mp4"), { possessionUrl: undefined });
    await plain.upload.done;
    expect(plain.states).toEqual(["hashing", "uploading", "processing", "done"]);
    expect(possessionRequests()).toBe(0);
    service.wire.polls = [completed(id)];
    const missing = start(fileOf(sampleMp4(MiB, 12), "other.mp4"), { possessionUrl: `${service.origin}/no-such-route` });
    expect(await missing.upload.done).toMatchObject({ skipped: false, detection: { state: "completed" } });
    expect(missing.states).toEqual(["hashing", "checking", "uploading", "processing", "done"]);
  });

  it("a possession route past its limit of challenges (429) gets the upload, as one without the route; a file too large (413) still fails", async () => {
    // As the example answers the 61st challenge of a user in a minute.
    let limited = 0;
    service.wire.fault = (req, res) => {
      if (req.method !== "POST" || req.url !== "/possession") return false;
      limited += 1;
      const message = "More than 60 possession challenges in a minute; try again in 59 s, or upload the file.";
      res.writeHead(429, { "content-type": "application/json", "retry-after": "59" }).end(JSON.stringify({ error: { code: "TOO_MANY_CHALLENGES", message } }));
      return true;
    };
    const { upload, states } = start(fileOf(bytes, "boat.mp4"));
    expect(await upload.done).toMatchObject({ media: { id }, detections: [{ label: "boat" }], skipped: false });
    expect(states).toEqual(["hashing", "checking", "uploading", "processing", "done"]);
    expect(limited).toBe(1);
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`]);
    expect(await service.stored()).toEqual([`videos/${id}.mp4`]);

    service.wire.fault = undefined;
    service.wire.maxBytes = MiB;
    service.tusSeen = [];
    const large = start(fileOf(sampleMp4(2 * MiB, 13), "large.mp4"));
    await expect(large.upload.done).rejects.toMatchObject({ status: 413, serverCode: "MEDIA_TOO_LARGE" });
    expect(large.states).toEqual(["hashing", "checking", "error"]);
    expect(service.tusSeen).toEqual([]);
  });

  it("pauses and resumes: called before the upload starts it starts paused; during it, it stops until resumed", async () => {
    let pausedNow!: () => void;
    let paused = new Promise<void>((resolve) => (pausedNow = resolve));
    const states: UploadState[] = [];
    const storage = memoryUrlStorage();
    let pausedOnce = false;
    const { upload } = start(fileOf(bytes, "boat.mp4"), {
      urlStorage: storage,
      onState: (state) => {
        states.push(state);
        if (state === "paused") pausedNow();
      },
      onProgress: (sent) => {
        if (sent < MiB || pausedOnce) return;
        pausedOnce = true;
        upload.pause();
      },
    });
    upload.pause();
    await paused;
    expect(states).toEqual(["hashing", "checking", "paused"]);
    expect(service.tusSeen).toEqual([]);
    paused = new Promise<void>((resolve) => (pausedNow = resolve));
    upload.resume();
    await paused;
    const url = [...storage.entries.values()][0]?.upload.uploadUrl as string;
    const offset = await service.offsetOf(url);
    expect(offset).toBeLessThan(bytes.length);
    expect(await service.offsetOf(url)).toBe(offset);
    upload.resume();
    expect(await upload.done).toMatchObject({ skipped: false, media: { id } });
    expect(states).toEqual(["hashing", "checking", "paused", "uploading", "paused", "uploading", "processing", "done"]);
  });

  it("cancel() while uploading: the upload is removed at the server, done rejects with an AbortError, state error", async () => {
    let cancelled!: Promise<void>;
    const { upload, states } = start(fileOf(bytes, "boat.mp4"), {
      onProgress: (sent) => {
        if (sent >= MiB && !cancelled) cancelled = upload.cancel();
      },
    });
    await expect(upload.done).rejects.toMatchObject({ name: "AbortError" });
    await cancelled;
    expect(states).toEqual(["hashing", "checking", "uploading", "error"]);
    expect(flow(service.tusSeen).at(-1)).toBe("DELETE");
    expect(await service.partials()).toEqual([]);
    expect(await service.stored()).toEqual([]);
  });

  it("cancel() after the link dropped (done rejected, the partial kept for a resume): removes the partial upload, once the server can be reached", async () => {
    // The link dies at the second PATCH, and then DELETE fails too (still offline), until it is back.
    let offline = true;
    service.fault = (req) => {
      if (!offline || !((req.method === "PATCH" && req.headers["upload-offset"] !== "0") || req.method === "DELETE")) return false;
      req.socket.destroy();
      return true;
    };
    const storage = memoryUrlStorage();
    const { upload, states } = start(fileOf(bytes, "boat.mp4"), { urlStorage: storage });
    await expect(upload.done).rejects.toMatchObject({ status: 0 });
    expect(await service.partials()).not.toEqual([]);
    await expect(upload.cancel()).rejects.toMatchObject({ status: 0 });
    expect(storage.entries.size).toBe(1);
    offline = false;
    await upload.cancel();
    expect(flow(service.tusSeen).slice(-2)).toEqual(["DELETE", "DELETE"]);
    expect(await service.partials()).toEqual([]);
    expect(storage.entries.size).toBe(0);
    expect(await service.stored()).toEqual([]);
    expect(states).toEqual(["hashing", "checking", "uploading", "error"]);
  });

  it("a refusal ends in state error with the UploadRequestError: a refused token at the check, a type at the upload", async () => {
    const refused = start(fileOf(bytes, "boat.mp4"), { token: "tok-nobody-1234567" });
    await expect(refused.upload.done).rejects.toMatchObject({ status: 401, text: "Not signed in, or the token was refused: sign in again." });
    expect(refused.states).toEqual(["hashing", "checking", "error"]);
    const typed = start(fileOf(bytes, "boat.avi.txt"), { possessionUrl: undefined });
    const error = await typed.upload.done.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UploadRequestError);
    expect(error).toMatchObject({ status: 415 });
    expect(typed.states).toEqual(["hashing", "uploading", "error"]);
    expect(await typed.upload.mediaId).toBe(id);
  });

  it("its signal stops it while detection is followed: done rejects with the reason, state error", async () => {
    service.wire.polls = [{ status: 200, body: { media: { id }, detection: { jobId: id, state: "active" } } }];
    const controller = new AbortController();
    const reason = new Error("tab closed");
    let polls = 0;
    const { upload, states } = start(fileOf(bytes, "boat.mp4"), { signal: controller.signal, onUpdate: () => ++polls === 2 && controller.abort(reason) });
    await expect(upload.done).rejects.toBe(reason);
    expect(states).toEqual(["hashing", "checking", "uploading", "processing", "error"]);
    expect(polls).toBe(2);
  });

  it("refuses at once a missing option and an unknown one", () => {
    expect(() => uploadMedia(fileOf(bytes, "a.mp4"), { endpoint: service.endpoint } as never)).toThrow(/`token`/);
    expect(() => uploadMedia(fileOf(bytes, "a.mp4"), { endpoint: service.endpoint, token: "t", possessionURL: "/p" } as never)).toThrow(/unknown option "possessionURL"/);
  });
});
