// Who may touch a tus upload: only its creator resumes, reads or finishes it; anyone else, on any
// method and any spelling of its URL, gets the 404 of an upload that does not exist. An upload is
// never read back (GET 405), and a second uploader of the same content learns nothing of the first.
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId } from "../src/index.ts";
import { MiB, tokenFor, useTusServer } from "./helpers/tus.ts";

const tusServer = useTusServer();
const { fixture, tusUpload, tusRequest, createdOnly, partials } = tusServer;

describe("createTusIntake", () => {
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

  it("another user's upload and an upload that does not exist get the same 404, on every method", async () => {
    const url = await createdOnly(sampleMp4(2 * MiB), "mine.mp4");
    const missing = `${tusServer.endpoint}/${"0".repeat(32)}`;
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
});
