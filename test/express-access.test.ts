// Who may see what in the example (docs/authorization.md), one host: every route that reads or
// changes a record by its ID, tried as another user, answers exactly as for an ID that does not
// exist; the record's user and the service role get through; an `authorize` hook decides instead.
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import type { AuthorizeMedia } from "../examples/express/authorize.ts";
import { samplePng } from "../examples/sample-media.ts";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient } from "../src/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const secret = "express-access-secret-0123456789abcdef";
let root: string;
let annotations: DevAnnotationsServer;
let url: string;
let close: () => Promise<void>;
const tokens: Record<string, string> = {};

async function startApp(options: { serviceUserIds?: string[]; authorize?: AuthorizeMedia; detector?: Parameters<typeof createDetectionsApp>[0]["detector"] } = {}) {
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotations.url, token: tokens.service as string }),
    directories: { videosDir: join(root, "videos"), imagesDir: join(root, "images") },
    auth: { verify: { secret } },
    ...options,
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
}

beforeEach(async () => {
  root = await makeTempDir();
  annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  for (const sub of ["alice", "bob", "ops", "service"]) {
    tokens[sub] = await new SignJWT({ sub, ...(sub === "bob" ? { roles: ["auditor"] } : {}) }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
  }
  await startApp({ serviceUserIds: ["ops"] });
});
afterEach(async () => {
  await close();
  await annotations.close();
});

async function call(method: string, path: string, as: string, body?: FormData) {
  const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${tokens[as]}` }, ...(body ? { body } : {}) });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function form(bytes: Uint8Array, name: string): FormData {
  const data = new FormData();
  data.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  return data;
}

async function history(id: string): Promise<number[]> {
  const response = await fetch(`${annotations.url}/api/media/${id}/history`, { headers: { authorization: `Bearer ${tokens.service}` } });
  return ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}

describe("the example's routes, tried as another user", () => {
  it("GET /media/:id and POST /detect/:id answer another user as for an ID that does not exist, and change nothing", async () => {
    const png = samplePng(20, 20, 31);
    const id = await computeMediaId(png);
    expect(await call("POST", "/detect", "alice", form(png, "alice-private.png"))).toMatchObject({ status: 200, body: { media: { id, userId: "alice" } } });
    const missing = "00000000000000aa";
    const notFound = (mediaId: string) => ({ status: 404, body: { error: { code: "MEDIA_NOT_FOUND", message: `No media ${mediaId}.` } } });
    expect(await call("GET", `/media/${missing}`, "bob")).toEqual(notFound(missing));
    expect(await call("GET", `/media/${id}`, "bob")).toEqual(notFound(id));
    expect(await call("POST", `/detect/${missing}`, "bob")).toEqual(notFound(missing));
    expect(await call("POST", `/detect/${id}`, "bob")).toEqual(notFound(id));
    // The poll of the media's job (its media ID on one host): another user's is the 404 of a job that never was.
    const jobNotFound = (jobId: string) => ({ status: 404, body: { error: { code: "NOT_FOUND", message: `No detection job ${jobId} (never queued, or its result expired).` } } });
    expect(await call("GET", `/detections/${missing}`, "bob")).toEqual(jobNotFound(missing));
    expect(await call("GET", `/detections/${id}`, "bob")).toEqual(jobNotFound(id));
    expect(await call("GET", `/detections/${id}`, "alice")).toMatchObject({ status: 200, body: { media: { id, userId: "alice" }, detection: { jobId: id, state: "completed" } } });
    expect(await history(id)).toEqual([1, 2, 3]);
    // The record's own user, and the service role, get through.
    expect(await call("GET", `/media/${id}`, "alice")).toMatchObject({ status: 200, body: { id, userId: "alice", name: "alice-private.png" } });
    expect(await call("GET", `/media/${id}`, "ops")).toMatchObject({ status: 200, body: { id, userId: "alice" } });
    expect(await call("POST", `/detect/${id}`, "ops")).toMatchObject({ status: 200, body: { media: { id, userId: "alice" } } });
    expect(await history(id)).toEqual([1, 2, 3, 2, 3]);
  });

  it("a second uploader of the same content gets its detections at upload time, without the first uploader's user ID or file name", async () => {
    const png = samplePng(20, 20, 32);
    const first = await call("POST", "/detect", "alice", form(png, "alice-private.png"));
    for (const route of ["/detect", "/detect-multer"]) {
      const second = await call("POST", route, "bob", form(png, "bob.png"));
      expect(second).toMatchObject({ status: 200, body: { media: { id: first.body.media.id, created: false, mediaStatus: 3 }, detections: first.body.detections } });
      expect(second.body.media).not.toHaveProperty("userId");
      expect(second.body.media).not.toHaveProperty("name");
      expect(JSON.stringify(second.body)).not.toContain("alice");
    }
    // Afterwards, by its ID, the record stays the first uploader's, and their uploads moved it not at all.
    expect(await call("GET", `/media/${first.body.media.id}`, "bob")).toMatchObject({ status: 404 });
    expect(await history(first.body.media.id)).toEqual([1, 2, 3]);
  });

  it("a second uploader who goes away during detection leaves the first uploader's record as it was", async () => {
    await close();
    // A detector that tells when it runs for whom, and ends only when its signal does.
    const runs: Array<{ id: string; aborted: Promise<void> }> = [];
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    await startApp({
      serviceUserIds: ["ops"],
      detector: async (_path, id, signal) => {
        if (runs.length === 0) {
          runs.push({ id, aborted: Promise.resolve() });
          return [];
        }
        runs.push({ id, aborted: new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true })) });
        started();
        await new Promise<void>((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
        return [];
      },
    });
    const png = samplePng(20, 20, 33);
    const first = await call("POST", "/detect", "alice", form(png, "alice-private.png"));
    expect(first).toMatchObject({ status: 200, body: { media: { mediaStatus: 3 } } });
    const gone = new AbortController();
    const second = fetch(`${url}/detect`, { method: "POST", headers: { authorization: `Bearer ${tokens.bob}` }, body: form(png, "bob.png"), signal: gone.signal }).catch((e: unknown) => e);
    await running;
    gone.abort();
    await second;
    await runs[1]?.aborted;
    // Whatever the server does after the abort has had its turn: the next request is answered after it.
    expect(await call("GET", `/media/${first.body.media.id}`, "alice")).toMatchObject({ status: 200, body: { mediaStatus: 3 } });
    expect(await history(first.body.media.id)).toEqual([1, 2, 3]);
  });

  it("an authorize hook decides instead of the default rule", async () => {
    await close();
    const seen: Array<{ userId: string; record: string }> = [];
    await startApp({
      authorize: (record, caller) => {
        seen.push({ userId: caller.userId, record: record.userId });
        const roles = JSON.parse(Buffer.from(caller.token.split(".")[1] as string, "base64url").toString()).roles as string[] | undefined;
        return record.userId === caller.userId || (roles ?? []).includes("auditor");
      },
    });
    const png = samplePng(20, 20, 33);
    const id = await computeMediaId(png);
    expect((await call("POST", "/detect", "alice", form(png, "a.png"))).status).toBe(200);
    expect(await call("GET", `/media/${id}`, "bob")).toMatchObject({ status: 200, body: { id, userId: "alice" } });
    expect(await call("GET", `/media/${id}`, "ops")).toMatchObject({ status: 404 });
    expect(seen).toEqual(expect.arrayContaining([{ userId: "bob", record: "alice" }, { userId: "ops", record: "alice" }]));
  });
});
