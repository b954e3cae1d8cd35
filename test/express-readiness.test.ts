// The example's /healthz and /readyz over HTTP, in each state an operator meets in the first hour:
// the annotations service at a wrong base path or down, a storage folder that cannot be written;
// ready again once fixed. A create answered 404 (a wrong base path) keeps the upload pending, and
// a read through it answers 503, never "no such media".
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { freePort } from "../examples/local-redis.ts";
import { serve } from "../examples/express/serve.ts";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, recoverInterrupted } from "../src/index.ts";
import { defaultSecret, useFaultFixture } from "./helpers/fixture.ts";

const fixture = useFaultFixture({ sub: "alice" });
const started: Array<Awaited<ReturnType<typeof serve>>> = [];
const mounted: string[] = [];
afterEach(async () => {
  for (const path of mounted.splice(0)) execFileSync("umount", [path]);
  for (const app of started.splice(0)) {
    app.server.closeAllConnections();
    await new Promise((r) => app.server.close(r));
  }
});

/** The example against `baseUrl` (one attempt per call), its log lines collected. */
async function startApp(baseUrl: string) {
  const lines: Array<{ level: number; msg: string; variable?: string }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const client = createAnnotationsClient({ baseUrl, token: "service-token", retry: false, timeoutMs: 1_000 });
  const express = createDetectionsApp({ client, directories: fixture.directories, auth: { verify: { secret: defaultSecret } }, logger, readiness: { annotationsUrl: baseUrl } });
  const app = await serve(express, { host: "127.0.0.1", port: 0, logger: pino({ enabled: false }) });
  started.push(app);
  return { url: app.url, lines };
}

async function readyz(url: string) {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, { ok: boolean; variable?: string; message?: string }> } };
}

async function upload(url: string, name: string, bytes: Uint8Array) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { error?: { code: string; message: string; mediaId?: string } } };
}

function readOnly(path: string): void {
  execFileSync("mount", ["--bind", path, path]);
  mounted.push(path);
  execFileSync("mount", ["-o", "remount,bind,ro", path]);
}

describe("the example's health", () => {
  it("an annotations URL with a password (given in code; ANNOTATIONS_URL refuses one): /readyz and the log never show the password", async () => {
    const withPassword = fixture.service.url.replace("http://", "http://svc:annpw-secret@");
    const { url, lines } = await startApp(withPassword);
    const ready = await readyz(url);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.annotations?.message).toContain("ANNOTATIONS_URL (http://svc:***@127.0.0.1:");
    expect(JSON.stringify(ready.body)).not.toContain("annpw-secret");
    expect(lines.some((line) => line.variable === "ANNOTATIONS_URL")).toBe(true);
    expect(JSON.stringify(lines)).not.toContain("annpw-secret");
  });

  it("/healthz is 200 while it serves; /readyz is 200 with every check passing", async () => {
    const { url } = await startApp(fixture.service.url);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await readyz(url)).toEqual({ status: 200, body: { status: "ready", checks: { annotations: { ok: true }, storage: { ok: true } } } });
  });

  it("with ANNOTATIONS_URL at a wrong base path: not ready, naming it; an upload is kept pending (503, not 404), and its record lands once fixed", async () => {
    const wrong = `${fixture.service.url}/wrong`;
    const { url, lines } = await startApp(wrong);
    const ready = await readyz(url);
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe("not ready");
    expect(ready.body.checks.annotations).toMatchObject({ ok: false, variable: "ANNOTATIONS_URL", message: expect.stringContaining("not the contract's route") });
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });

    const bytes = samplePng(16, 16, 7);
    const id = await computeMediaId(bytes);
    const answer = await upload(url, "p.png", bytes);
    expect(answer).toMatchObject({ status: 503, retryAfter: "5", body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: id, message: expect.stringContaining("misconfigured") } } });
    const kept = join(fixture.directories.imagesDir, `${id}.png`);
    expect(existsSync(kept)).toBe(true);
    expect(lines.some((line) => line.level === 50 && line.variable === "ANNOTATIONS_URL" && line.msg.includes("no route POST /api/media"))).toBe(true);
    expect(lines.some((line) => line.level === 50 && line.variable === "ANNOTATIONS_URL" && line.msg.startsWith("not ready"))).toBe(true);
    expect(fixture.fake.records.size).toBe(0);
    // A read through the wrong path is no "no such media": 503, for this media and for any other.
    for (const read of [`/media/${id}`, `/media/${"ab".repeat(8)}`]) {
      const answer = await fetch(`${url}${read}`, { headers: { authorization: `Bearer ${fixture.token}` } });
      expect(answer.status, read).toBe(503);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe("ANNOTATIONS_ROUTE_MISSING");
    }

    // Fixed: a process with the right ANNOTATIONS_URL settles what was kept, and is ready.
    const report = await recoverInterrupted({ client: fixture.client({ retry: false }), directories: fixture.directories });
    expect(report.recordsCreated).toEqual([id]);
    expect(fixture.fake.records.get(id)).toMatchObject({ path: kept });
    expect(existsSync(kept)).toBe(true);
    const fixed = await startApp(fixture.service.url);
    expect((await readyz(fixed.url)).status).toBe(200);
  });

  it("a create answered 405 is kept pending too, and the upload's file is never removed", async () => {
    fixture.intercept = (request) => (request.method === "POST" ? { status: 405 } : undefined);
    const { url } = await startApp(fixture.service.url);
    const bytes = samplePng(16, 16, 8);
    const answer = await upload(url, "p.png", bytes);
    expect(answer).toMatchObject({ status: 503, body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: await computeMediaId(bytes) } } });
    expect(existsSync(join(fixture.directories.imagesDir, `${await computeMediaId(bytes)}.png`))).toBe(true);
  });

  it("with ANNOTATIONS_URL where nothing listens: not ready, naming it; uploads answer 503 with Retry-After at once", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const { url } = await startApp(down);
    const ready = await readyz(url);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.annotations).toMatchObject({ ok: false, variable: "ANNOTATIONS_URL", message: expect.stringContaining("cannot be reached") });
    const answer = await upload(url, "p.png", samplePng(16, 16, 9));
    expect(answer).toMatchObject({ status: 503, retryAfter: "5" });
  });

  it("with IMAGES_DIR put on another file system after the start: not ready, naming IMAGES_DIR and VIDEOS_DIR as the start does; ready again once back", async () => {
    const { url, lines } = await startApp(fixture.service.url);
    expect((await readyz(url)).status).toBe(200);
    const { imagesDir, videosDir } = fixture.directories;
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", imagesDir]);
    mounted.push(imagesDir);
    const ready = await readyz(url);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.storage).toEqual({
      ok: false,
      variable: "IMAGES_DIR",
      message: `IMAGES_DIR (${imagesDir}) is on another file system than VIDEOS_DIR (${videosDir}): a finished upload is linked into place, never copied; put them on one volume.`,
    });
    expect(lines.some((line) => line.level === 50 && line.variable === "IMAGES_DIR" && line.msg.includes("is on another file system than VIDEOS_DIR"))).toBe(true);
    execFileSync("umount", [mounted.pop() as string]);
    expect((await readyz(url)).status).toBe(200);
  });

  for (const [variable, key, name, bytes] of [
    ["IMAGES_DIR", "imagesDir", "p.png", samplePng(16, 16, 10)],
    ["VIDEOS_DIR", "videosDir", "v.mp4", sampleMp4(20_000, 11)],
  ] as const) {
    it(`with ${variable} not writable: not ready, naming it; uploads get 503 (not 500) and the log names ${variable}; ready again once writable`, async () => {
      const { url, lines } = await startApp(fixture.service.url);
      await mkdir(fixture.directories[key], { recursive: true });
      readOnly(fixture.directories[key]);
      const ready = await readyz(url);
      expect(ready.status).toBe(503);
      expect(ready.body.checks.storage).toMatchObject({ ok: false, variable, message: expect.stringContaining(`${variable} (${fixture.directories[key]}) cannot be written: read-only (EROFS)`) });
      const answer = await upload(url, name, bytes);
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe("5");
      expect(["STORAGE_UNAVAILABLE", "JOURNAL_UNAVAILABLE"]).toContain(answer.body.error?.code);
      expect(lines.some((line) => line.level === 50 && line.variable === variable && line.msg.startsWith(`${variable} (`))).toBe(true);

      execFileSync("umount", [mounted.pop() as string]);
      expect((await readyz(url)).status).toBe(200);
      expect(lines.some((line) => line.level === 30 && line.msg === "storage is ready again")).toBe(true);
      expect((await upload(url, name, bytes)).status).toBe(200);
    });
  }
});
