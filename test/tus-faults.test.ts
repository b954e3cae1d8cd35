// The tus endpoint under faults, with tus-js-client over real HTTP on loopback: a connection cut
// mid-PATCH resumes where the bytes stopped; a final answer lost, a token expired during the last
// PATCH, a record whose create had no known outcome (503) or a journal that cannot be written
// (503 with Retry-After): each upload is finished by the client's resume (a HEAD or a retry).
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, fileJournalFor, JournalUnavailableError, type MediaJournal, MediaStatus, MediaType } from "../src/index.ts";
import { failure, MiB, tokenFor, useTusServer } from "./helpers/tus.ts";

const tusServer = useTusServer();
const { fixture, startTus, closeServer, tusUpload, tusRequest, stored, partials, statusOf } = tusServer;

describe("createTusIntake", () => {
  it("a 64 MiB upload in 4 MiB chunks, its connection killed mid-way, resumes to one file and one record", async () => {
    const mp4 = sampleMp4(64 * MiB, 7);
    const id = await computeMediaId(mp4);
    // The connection of the PATCH that carries the 21st MiB is destroyed mid-body, once.
    let received = 0;
    let cut = false;
    tusServer.fault = (req) => {
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
    const seen = tusServer.fault;
    tusServer.fault = (req, res) => {
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

  it("a final answer lost on the way: the client resumes, and the HEAD says complete with the media ID", async () => {
    const png = samplePng(200, 100, 9);
    const id = await computeMediaId(png);
    let lost = false;
    tusServer.fault = (req, res) => {
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
    const created = await tusRequest(tusServer.endpoint, "POST", shortLived, { "upload-length": String(png.length), "upload-metadata": `filename ${Buffer.from("expiring.png").toString("base64")}` });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get("location") as string, tusServer.endpoint).href;
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
      tusServer.fault = (req) => {
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
});
