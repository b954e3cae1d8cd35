// uploadResumable (media-intake/browser) with tus-js-client's Node build against the library's own
// tus endpoint and the dev annotations server, over real HTTP on loopback, a File as input (read
// through the helper's Blob reader: the Node build reads no Blob). A cut upload resumes at the
// server's offset, within the call and after a "reload" (a new call, the same URL storage), a
// renamed copy too (the same date, as `cp -p` keeps it), but not an edited file of the same media
// ID; pause, resume, cancel and the signal; refusals in plain text, a final one sent only once.
import { execFile } from "node:child_process";
import { openAsBlob } from "node:fs";
import { readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Upload } from "tus-js-client";
import { describe, expect, it } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { computeMediaId, type TusUploadClass, UploadRequestError, uploadResumable } from "../src/browser/index.ts";
import { loadTusUpload } from "../src/browser/tus-client.ts";
import { createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { flow, MiB, memoryUrlStorage, secret, useBrowserService } from "./helpers/browser-service.ts";
import { signToken } from "./helpers/fixture.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const service = useBrowserService();
/** When the file of most tests was last changed: the same file, picked again (after a reload), has the same date. */
const PICKED_AT = Date.parse("2025-03-01T10:00:00Z");
const fileOf = (bytes: Uint8Array, name: string, lastModified = PICKED_AT) => new File([bytes as Uint8Array<ArrayBuffer>], name, { lastModified });
/** The file at `path` as a page's file input gives it: its bytes, a name, and its mtime as `lastModified`. */
const picked = async (path: string, name: string) => new File([await openAsBlob(path)], name, { lastModified: Math.trunc((await stat(path)).mtimeMs) });
/** tus-js-client's class, as a page passes it (the Node build here). */
const TusUpload: TusUploadClass = Upload;

/** The `Upload-Metadata` header as an object. */
const metadataOf = (header: string | undefined) =>
  Object.fromEntries((header ?? "").split(",").map((pair) => pair.split(" ")).map(([key, value]) => [key, Buffer.from(value ?? "", "base64").toString()]));

/** Cuts the connection of every PATCH after the first `passed` ones. */
function cutPatchesAfter(passed: number): void {
  let patches = 0;
  service.fault = (req, res) => {
    if (req.method !== "PATCH" || ++patches <= passed) return false;
    res.socket?.destroy();
    return true;
  };
}

describe("uploadResumable", () => {
  it("uploads a File of a file on disk in chunks (tus-js-client imported by the helper itself): the finish answer reaches the caller, the fingerprint is gone", async () => {
    const bytes = sampleMp4(3 * MiB, 1);
    const id = await computeMediaId(fileOf(bytes, "x"));
    const storage = memoryUrlStorage();
    const progress: Array<[number, number]> = [];
    // A File of a file on disk, as a page's <input type=file> gives one.
    const path = join(await makeTempDir(), "picked.mp4");
    await writeFile(path, bytes);
    const upload = uploadResumable(new File([await openAsBlob(path)], "flight 07.mp4"), {
      endpoint: service.endpoint,
      token: service.dev.token,
      chunkSize: MiB,
      retryDelays: [],
      urlStorage: storage,
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    const { status, body } = await upload.done;
    expect(status).toBe(200);
    expect(body).toEqual({ media: expect.objectContaining({ id, userId: "alice", name: "flight 07.mp4", created: true }), detection: { jobId: id, state: "waiting", poll: `/detections/${id}` } });
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`, `PATCH ${3 * MiB}`]);
    expect(metadataOf(service.tusSeen[0]?.metadata)).toEqual({ filename: "flight 07.mp4", mediaId: id });
    expect(progress.at(-1)).toEqual([bytes.length, bytes.length]);
    expect(storage.entries.size).toBe(0);
    expect(await service.stored()).toEqual([`videos/${id}.mp4`]);
    const client = createAnnotationsClient({ baseUrl: service.dev.annotations.url, token: service.dev.token });
    expect(await client.media.get(id)).toMatchObject({ id, userId: "alice", mediaStatus: MediaStatus.New });
  });

  it("resumes a cut upload at the server's offset within the call (its retries), creating it once", async () => {
    const bytes = sampleMp4(3 * MiB, 2);
    cutPatchesAfter(1);
    let cut = false;
    const inner = service.fault;
    service.fault = (req, res) => {
      if (cut || !inner?.(req, res)) return false;
      cut = true;
      return true;
    };
    const { body } = await uploadResumable(fileOf(bytes, "clip.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [0] }).done;
    expect(body.media.id).toBe(await computeMediaId(fileOf(bytes, "x")));
    // The second PATCH cut: a HEAD asks the offset, and the rest goes from there.
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, "HEAD", `PATCH ${MiB}`, `PATCH ${2 * MiB}`, `PATCH ${3 * MiB}`]);
  });

  it("after a reload, resumes at the server's offset, for a copy of the file under another name (cp -p: the same date), and the finish answer reaches the caller", async () => {
    const bytes = sampleMp4(3 * MiB, 3);
    const id = await computeMediaId(fileOf(bytes, "x"));
    const dir = await makeTempDir();
    await writeFile(join(dir, "flight.mp4"), bytes);
    const original = await picked(join(dir, "flight.mp4"), "flight.mp4");
    const storage = memoryUrlStorage();
    cutPatchesAfter(1);
    const first = uploadResumable(original, { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage });
    const error = await first.done.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UploadRequestError);
    expect(error).toMatchObject({ status: 0, text: "The service could not be reached; check the connection and try again." });
    // What the page keeps across the reload: the upload's URL, under the media ID, the file's date and the endpoint.
    const [kept] = [...storage.entries.values()];
    expect(kept?.fingerprint).toBe(`media-intake:${id}:${original.lastModified}:${service.endpoint}`);
    expect(await service.offsetOf(kept?.upload.uploadUrl as string)).toBe(MiB);

    // `cp -p`: the bytes and the date, to the nanosecond.
    const copy = join(dir, "renamed copy.mp4");
    await promisify(execFile)("cp", ["-p", join(dir, "flight.mp4"), copy]);
    service.fault = undefined;
    service.tusSeen = [];
    const reloaded = uploadResumable(await picked(copy, "renamed copy.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage });
    const { status, body } = await reloaded.done;
    expect(flow(service.tusSeen)).toEqual(["HEAD", `PATCH ${MiB}`, `PATCH ${2 * MiB}`, `PATCH ${3 * MiB}`]);
    expect(status).toBe(200);
    expect(body).toMatchObject({ media: { id, name: "flight.mp4", userId: "alice" }, detection: { poll: `/detections/${id}` } });
    expect(storage.entries.size).toBe(0);
    expect(await service.stored()).toEqual([`videos/${id}.mp4`]);
    expect(await service.partials()).toEqual([]);
  });

  it("an edited file of the same media ID (other bytes past the sampled KiB, a newer date) is not resumed on the other's upload: a new one, stored byte for byte", async () => {
    const dir = await makeTempDir();
    const first = sampleMp4(3 * MiB, 8);
    await writeFile(join(dir, "take.mp4"), first);
    // Last changed a day ago; the edit is today's.
    const dayAgo = new Date(Date.now() - 86_400_000);
    await utimes(join(dir, "take.mp4"), dayAgo, dayAgo);
    const storage = memoryUrlStorage();
    cutPatchesAfter(1);
    await uploadResumable(await picked(join(dir, "take.mp4"), "take.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage }).done.catch(() => {});
    expect(storage.entries.size).toBe(1);

    // The edit: frames changed in the first and the last MiB, none of the 3 KiB the media ID samples.
    const edited = Buffer.from(first);
    edited.fill(0x41, 200_000, 200_100);
    edited.fill(0x42, Math.floor(2.5 * MiB), Math.floor(2.5 * MiB) + 100);
    await writeFile(join(dir, "take.mp4"), edited);
    const file = await picked(join(dir, "take.mp4"), "take.mp4");
    const id = await computeMediaId(file);
    expect(id).toBe(await computeMediaId(fileOf(first, "x")));
    service.fault = undefined;
    service.tusSeen = [];
    const { body } = await uploadResumable(file, { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage }).done;
    expect(body.media.id).toBe(id);
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`, `PATCH ${3 * MiB}`]);
    expect(await service.stored()).toEqual([`videos/${id}.mp4`]);
    expect((await readFile(join(service.dev.directories.videosDir, `${id}.mp4`))).equals(edited)).toBe(true);
  });

  it("a URL kept for another user's upload (a shared browser) is not resumed: its HEAD is refused, a new upload starts", async () => {
    const bytes = sampleMp4(2 * MiB, 7);
    const storage = memoryUrlStorage();
    cutPatchesAfter(1);
    await uploadResumable(fileOf(bytes, "alice.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage }).done.catch(() => {});
    expect(storage.entries.size).toBe(1);
    service.fault = undefined;
    service.tusSeen = [];
    const bob = await signToken("bob", secret, "5m");
    const { body } = await uploadResumable(fileOf(bytes, "bob.mp4"), { endpoint: service.endpoint, token: bob, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage }).done;
    expect(flow(service.tusSeen)).toEqual(["HEAD", "POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`]);
    expect(body.media.id).toBe(await computeMediaId(fileOf(bytes, "x")));
    expect(storage.entries.size).toBe(0);
  });

  it("pauses (nothing more sent, the server keeping its offset) and resumes from there", async () => {
    const bytes = sampleMp4(4 * MiB, 4);
    const storage = memoryUrlStorage();
    let once = false;
    let pausedAt!: () => void;
    const paused = new Promise<void>((resolve) => (pausedAt = resolve));
    const upload = uploadResumable(fileOf(bytes, "clip.mp4"), {
      endpoint: service.endpoint,
      token: service.dev.token,
      Upload: TusUpload,
      chunkSize: MiB,
      retryDelays: [],
      urlStorage: storage,
      onProgress: (sent) => {
        if (sent < 2 * MiB || once) return;
        once = true;
        upload.pause();
        pausedAt();
      },
    });
    await paused;
    const url = [...storage.entries.values()][0]?.upload.uploadUrl as string;
    const offset = await service.offsetOf(url);
    expect(offset).toBeGreaterThanOrEqual(MiB);
    expect(offset).toBeLessThan(bytes.length);
    const before = service.tusSeen.length;
    // Still where it was paused: nothing was sent in the meantime.
    expect(await service.offsetOf(url)).toBe(offset);
    upload.resume();
    const { body } = await upload.done;
    expect(body.media.id).toBe(await computeMediaId(fileOf(bytes, "x")));
    expect(flow(service.tusSeen.slice(before))[0]).toBe("HEAD");
    expect(flow(service.tusSeen.slice(before)).filter((line) => line === "POST")).toEqual([]);
  });

  it("cancel() removes the upload at the server and the URL kept for it; done rejects with an AbortError", async () => {
    const bytes = sampleMp4(3 * MiB, 5);
    const storage = memoryUrlStorage();
    cutPatchesAfter(1);
    const upload = uploadResumable(fileOf(bytes, "clip.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [], urlStorage: storage });
    await upload.done.catch(() => {});
    const url = [...storage.entries.values()][0]?.upload.uploadUrl as string;
    expect(await service.offsetOf(url)).toBe(MiB);
    service.fault = undefined;
    const cancelled = uploadResumable(fileOf(bytes, "clip.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, urlStorage: storage });
    cancelled.pause();
    await cancelled.cancel();
    await expect(cancelled.done).rejects.toMatchObject({ name: "AbortError" });
    expect(flow(service.tusSeen).at(-1)).toBe("DELETE");
    expect(await service.offsetOf(url)).toBe(404);
    expect(await service.partials()).toEqual([]);
    expect(storage.entries.size).toBe(0);
  });

  it("its signal stops it (done rejects with the reason) and the server keeps what it has for a later call", async () => {
    const bytes = sampleMp4(3 * MiB, 6);
    const storage = memoryUrlStorage();
    const controller = new AbortController();
    const reason = new Error("page hidden");
    const upload = uploadResumable(fileOf(bytes, "clip.mp4"), {
      endpoint: service.endpoint,
      token: service.dev.token,
      Upload: TusUpload,
      chunkSize: MiB,
      urlStorage: storage,
      signal: controller.signal,
      onProgress: (sent) => sent >= MiB && controller.abort(reason),
    });
    await expect(upload.done).rejects.toBe(reason);
    const url = [...storage.entries.values()][0]?.upload.uploadUrl as string;
    expect(await service.offsetOf(url)).toBeGreaterThanOrEqual(MiB);
    const again = await uploadResumable(fileOf(bytes, "clip.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, urlStorage: storage }).done;
    expect(again.body.media.id).toBe(await computeMediaId(fileOf(bytes, "x")));
    expect(flow(service.tusSeen).filter((line) => line === "POST")).toHaveLength(1);
  });

  it("refusals are UploadRequestErrors in plain text, never with the token: 401, 415 with the type, 413 with the limit", async () => {
    const refusal = async (file: File, token = service.dev.token) => {
      const error = await uploadResumable(file, { endpoint: service.endpoint, token, Upload: TusUpload, retryDelays: [] }).done.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UploadRequestError);
      expect(`${(error as Error).message} ${(error as Error).stack}`).not.toContain(token);
      return error;
    };
    expect(await refusal(fileOf(sampleMp4(1000), "a.mp4"), "eyJhbGciOiJIUzI1NiJ9.e30.forged-signature")).toMatchObject({ status: 401, text: "Not signed in, or the token was refused: sign in again." });
    expect(await refusal(fileOf(sampleMp4(1000), "notes.txt"))).toMatchObject({ status: 415, text: expect.stringMatching(/^This type of file is not accepted \(\.txt files\)\. /) });
    await service.restartTus({ maxBytes: MiB });
    expect(await refusal(fileOf(sampleMp4(2 * MiB), "big.mp4"))).toMatchObject({ status: 413, serverCode: "MEDIA_TOO_LARGE", text: "The file is too large. The upload is over the limit of 1 MiB (1048576 bytes)." });
    expect(await service.partials()).toEqual([]);
  });

  it("a final refusal with the service's error (409 MEDIA_ID_COLLISION: the stored file of the ID holds other bytes) is sent once, not once per retry", async () => {
    const stored = sampleMp4(2 * MiB, 9);
    await uploadResumable(fileOf(stored, "real.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB }).done;
    // Every byte flipped but the three KiB the media ID samples: the same ID, other content.
    const other = stored.map((byte) => byte ^ 0xff);
    const middle = Math.floor((stored.length - 1024) / 2);
    for (const start of [0, middle, stored.length - 1024]) other.set(stored.subarray(start, start + 1024), start);
    const id = await computeMediaId(fileOf(stored, "x"));
    expect(await computeMediaId(fileOf(other, "x"))).toBe(id);
    service.tusSeen = [];
    const error = await uploadResumable(fileOf(other, "other.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [0, 0, 0, 0, 0] }).done.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UploadRequestError);
    expect(error).toMatchObject({ status: 409, serverCode: "MEDIA_ID_COLLISION" });
    // The file went once: one creation, its PATCHes from 0 to the end, no second round.
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, `PATCH ${2 * MiB}`]);
    expect((await readFile(join(service.dev.directories.videosDir, `${id}.mp4`))).equals(stored)).toBe(true);
  });

  it("tus's own 409 (a PATCH at another offset than the server's) is still retried: a HEAD, then on from the server's offset", async () => {
    const bytes = sampleMp4(3 * MiB, 10);
    let moved = false;
    service.fault = (req) => {
      // The second PATCH claims offset 0 while the server holds 1 MiB: the server answers 409.
      if (req.method === "PATCH" && req.headers["upload-offset"] === String(MiB) && !moved) {
        moved = true;
        const at = req.rawHeaders.findIndex((name, index) => index % 2 === 0 && name.toLowerCase() === "upload-offset");
        req.rawHeaders[at + 1] = "0";
        req.headers["upload-offset"] = "0";
      }
      return false;
    };
    const { body } = await uploadResumable(fileOf(bytes, "clip.mp4"), { endpoint: service.endpoint, token: service.dev.token, Upload: TusUpload, chunkSize: MiB, retryDelays: [0] }).done;
    expect(body.media.id).toBe(await computeMediaId(fileOf(bytes, "x")));
    expect(flow(service.tusSeen)).toEqual(["POST", "PATCH 0", `PATCH ${MiB}`, "HEAD", `PATCH ${MiB}`, `PATCH ${2 * MiB}`, `PATCH ${3 * MiB}`]);
    expect((await readFile(join(service.dev.directories.videosDir, `${body.media.id}.mp4`))).equals(bytes)).toBe(true);
  });

  it("without tus-js-client: an error naming the package and its install command", async () => {
    const missing = Object.assign(new Error("Cannot find package 'tus-js-client'"), { code: "ERR_MODULE_NOT_FOUND" });
    const error = await loadTusUpload(undefined, () => Promise.reject(missing)).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "MissingPeerDependencyError", cause: missing });
    expect((error as Error).message).toMatch(/^uploadResumable \(media-intake\/browser\) needs the optional peer dependency "tus-js-client": npm install tus-js-client\. Or pass its Upload class as the `Upload` option/);
    expect(await loadTusUpload(undefined)).toBe(Upload);
  });

  it("refuses at once a missing option, a nameless Blob and an unknown option", () => {
    const blob = new Blob([sampleMp4(10) as Uint8Array<ArrayBuffer>]);
    expect(() => uploadResumable(blob, { endpoint: service.endpoint, token: "t" })).toThrow(/pass `name`/);
    expect(() => uploadResumable(blob, { endpoint: service.endpoint, name: "a.mp4" } as never)).toThrow(/`token`/);
    expect(() => uploadResumable(blob, { endpoint: service.endpoint, token: "t", name: "a.mp4", parallelUploads: 2 } as never)).toThrow(/unknown option "parallelUploads"/);
  });
});
