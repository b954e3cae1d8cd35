import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createAnnotationsClient, MediaStatus, MediaType } from "../src/index.ts";
import { describeMediaApiContract, freshId } from "./helpers/media-contract.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const secret = "dev-server-test-secret-0123456789abcdef";
const sign = (key = secret) => new SignJWT({ sub: "user-1" }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(key));

let server: DevAnnotationsServer;
let token: string;
let badToken: string;
let dbDir: string;

beforeAll(async () => {
  dbDir = await mkdtemp(join(tmpdir(), "media-intake-devdb-"));
  server = await startDevAnnotationsServer({ port: 0, dbPath: join(dbDir, "annotations.db"), jwtSecret: secret });
  token = await sign();
  badToken = await sign("another-secret-that-is-long-enough-42");
});
afterAll(async () => {
  await server.close();
  await rm(dbDir, { recursive: true, force: true });
});

describeMediaApiContract("dev annotations server (SQLite)", () => ({ baseUrl: server.url, token, badToken }));

async function raw(path: string, init: RequestInit = {}) {
  const response = await fetch(`${server.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, type: response.headers.get("content-type"), body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe("dev annotations server", () => {
  const headers = () => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });

  it("answers camelCase and keeps the status history", async () => {
    const id = freshId();
    const client = createAnnotationsClient({ baseUrl: server.url, token });
    await client.media.create({ id, name: "a.png", path: `/d/${id}.png`, mediaType: MediaType.Image, userId: "user-1" });
    await client.media.updateStatus(id, MediaStatus.AIProcessing);
    await client.media.updateStatus(id, MediaStatus.AIProcessed);
    const got = await raw(`/api/media/${id}`, { headers: headers() });
    expect(got.body).toMatchObject({ id, name: "a.png", mediaType: 2, mediaStatus: 3, userId: "user-1" });
    const history = await raw(`/api/media/${id}/history`, { headers: headers() });
    expect((history.body as unknown as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus)).toEqual([1, 2, 3]);
  });

  it("validates every field, with a problem body naming it", async () => {
    const result = await raw("/api/media", { method: "POST", headers: headers(), body: JSON.stringify({ Id: "xyz", Name: "", MediaType: 3, MediaStatus: 9 }) });
    expect(result.status).toBe(400);
    expect(result.type).toMatch(/^application\/problem\+json/);
    expect(Object.keys((result.body?.errors ?? {}) as object).sort()).toEqual(["Id", "MediaStatus", "MediaType", "Name", "Path", "UserId"]);
  });

  it("refuses a Name of 900 KB, naming the field and its limit", async () => {
    const body = { Id: freshId(), Name: "n".repeat(900 * 1024), Path: "/data/images/x.png", MediaType: 2, MediaStatus: 1, UserId: "user-1" };
    const result = await raw("/api/media", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    expect(result.status).toBe(400);
    expect(result.body?.errors).toEqual({ Name: ["The Name field must be at most 1024 characters, got 921600."] });
  });

  it("a database locked by another connection answers 503 with the cause, not a failed rollback", async () => {
    const { DatabaseSync } = await import("node:sqlite");
    const dir = await makeTempDir();
    const dbPath = join(dir, "locked.db");
    const locked = await startDevAnnotationsServer({ dbPath, jwtSecret: secret, busyTimeoutMs: 50 });
    const other = new DatabaseSync(dbPath);
    other.exec("BEGIN EXCLUSIVE");
    try {
      const body = { Id: freshId(), Name: "a.png", Path: "/data/images/a.png", MediaType: 2, MediaStatus: 1, UserId: "user-1" };
      const response = await fetch(`${locked.url}/api/media`, { method: "POST", headers: headers(), body: JSON.stringify(body) });
      expect(response.status).toBe(503);
      const problem = (await response.json()) as { detail: string };
      expect(problem.detail).toMatch(/^The database could not start a transaction: database is locked/);
      expect(problem.detail).not.toMatch(/rollback/i);
    } finally {
      other.exec("ROLLBACK");
      other.close();
      await locked.close();
    }
  });

  it("refuses a body that is not JSON, or has no token", async () => {
    expect((await raw("/api/media", { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" }, body: "x" })).status).toBe(415);
    expect((await raw("/api/media", { method: "POST", headers: headers(), body: "{" })).status).toBe(400);
    const unauthorised = await raw(`/api/media/${freshId()}`);
    expect(unauthorised).toMatchObject({ status: 401, body: { title: "Unauthorized" } });
  });

  it("keeps records across a restart", async () => {
    const dir = await makeTempDir();
    const dbPath = join(dir, "a.db");
    const first = await startDevAnnotationsServer({ dbPath });
    const id = freshId();
    await createAnnotationsClient({ baseUrl: first.url, token }).media.create({ id, name: "v.mp4", path: "/v", mediaType: 1, userId: "u" });
    await first.close();
    const second = await startDevAnnotationsServer({ dbPath });
    try {
      expect((await createAnnotationsClient({ baseUrl: second.url, token }).media.get(id)).name).toBe("v.mp4");
    } finally {
      await second.close();
    }
  });

  it("runs as `media-intake dev-annotations`", async () => {
    const dir = await makeTempDir();
    const child = spawn(process.execPath, [resolve(import.meta.dirname, "../src/cli/index.ts"), "dev-annotations", "--port", "0", "--db", join(dir, "cli.db")]);
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
      const url = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
      expect(url).toBeDefined();
      const id = freshId();
      const client = createAnnotationsClient({ baseUrl: url ?? "", token });
      await client.media.create({ id, name: "c.png", path: "/c", mediaType: 2, userId: "u" });
      expect((await client.media.get(id)).mediaStatus).toBe(1);
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    expect(child.exitCode).toBe(0);
  });
});
