// A tus upload's life at the endpoint, with tus-js-client over real HTTP on loopback: created with
// its data (creation-with-upload), deleted, expired (410, then swept), its finish marker torn, and
// the same content through tus and intakeMedia kept as one file and one record.
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, intakeMedia, MediaStatus, MediaType } from "../src/index.ts";
import { auth, MiB, useTusServer } from "./helpers/tus.ts";

const tusServer = useTusServer();
const { fixture, startTus, closeServer, tusUpload, tusRequest, createdOnly, stored, partials, statusOf } = tusServer;

describe("createTusIntake", () => {
  it("a torn finish marker is no answer: the owner's HEAD gets 404 (never 500), and the sweep removes it", async () => {
    const png = samplePng(40, 30, 2);
    const done = await tusUpload(png, "torn.png");
    const uploadId = done.uploadUrl.split("/").pop() as string;
    const marker = join(tusServer.tus.uploadsDir, `${uploadId}.media`);
    const whole = await readFile(marker, "utf8");
    expect(JSON.parse(whole)).toMatchObject({ mediaId: done.mediaId, userId: "alice" });
    // Half a marker, as a write cut by a power loss leaves it (ours are renamed into place whole).
    await writeFile(marker, whole.slice(0, whole.length >> 1));
    const head = await tusRequest(done.uploadUrl, "HEAD", fixture.token);
    expect(head.status).toBe(404);
    await tusServer.tus.sweep();
    expect(await readdir(tusServer.tus.uploadsDir)).toEqual([]);
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
    tusServer.fault = (req, res) => {
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
    const info = JSON.parse(await readFile(join(tusServer.tus.uploadsDir, `${uploadId}.json`), "utf8")) as { creation_date: string };
    info.creation_date = new Date(Date.now() - 5_000).toISOString();
    await writeFile(join(tusServer.tus.uploadsDir, `${uploadId}.json`), JSON.stringify(info));
    tusServer.fault = undefined;
    expect((await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${fixture.token}` } })).status).toBe(410);
    expect((await tusServer.tus.sweep()).removed).toEqual([uploadId]);
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
});
