// The readiness wiring of `npm run example:express` (server.ts), in a process of its own: started
// with REDIS_URL where nothing listens, it serves, /readyz and uploads answer 503 naming it; started
// while its annotations service is not there yet, it serves, /readyz is 503 naming ANNOTATIONS_URL
// and uploads are answered at once with 503 and Retry-After, until the service comes up; a storage
// folder made read-only while it runs is named by its variable in /readyz and in the log, and
// uploads get 503 or 507, never a 500 nor the raw error of a file.
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { freePort } from "../examples/local-redis.ts";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId } from "../src/index.ts";
import { startChild } from "./helpers/child.ts";
import { exampleEnv } from "./helpers/example-env.ts";
import { signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";
import { mountSmallTmpfs } from "./helpers/tmpfs.ts";

const secret = "example-readiness-secret-0123456789abcdef";
const server = resolve(import.meta.dirname, "../examples/express/server.ts");
const mounted: string[] = [];
afterEach(() => {
  for (const path of mounted.splice(0)) execFileSync("umount", [path]);
});

/** The example with `annotationsUrl` (and `env`), its folders in a fresh temp root; resolves once it listens. */
async function startExample(annotationsUrl: string, env: NodeJS.ProcessEnv = {}) {
  const root = await makeTempDir();
  const directories = storageDirectoriesIn(root);
  const example = startChild(server, null, exampleEnv({ annotationsUrl, directories, secret }, env));
  const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
  return { ...example, url: url as string, root, directories, token: await signToken("alice", secret, "5m") };
}

type Check = { ok: boolean; variable?: string; message?: string };

async function readyz(url: string) {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, Check> } };
}

/** GET /readyz again until it answers `status`: a change waited for, not a delay. */
async function readyzUntil(url: string, status: number) {
  for (;;) {
    const ready = await readyz(url);
    if (ready.status === status) return ready;
  }
}

/** An upload to `route`, answered within 5 s or failed (a hang is a failure, not a wait). */
async function upload(url: string, token: string, name: string, bytes: Uint8Array, route = "/detect") {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${url}${route}`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { error?: { code: string; message: string } } };
}

describe("npm run example:express: readiness", () => {
  it("ANNOTATIONS_URL with nothing listening: serves, /readyz 503 naming it, uploads 503 with Retry-After at once; ready once the service is up", async () => {
    const port = await freePort();
    const annotationsUrl = `http://127.0.0.1:${port}`;
    const example = await startExample(annotationsUrl);
    const down = await readyz(example.url);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("not ready");
    expect(down.body.checks.annotations).toMatchObject({ ok: false, variable: "ANNOTATIONS_URL", message: expect.stringContaining(`ANNOTATIONS_URL (${annotationsUrl}) cannot be reached`) });
    expect(down.body.checks.storage).toEqual({ ok: true });

    const refused = await upload(example.url, example.token, "p.png", samplePng(16, 16, 1));
    // Kept, its record created in the background once the service is back.
    expect(refused).toMatchObject({ status: 503, retryAfter: "5", body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: await computeMediaId(samplePng(16, 16, 1)) } } });
    // The log names the variable to look at.
    await example.match(/"level":50,.*"variable":"ANNOTATIONS_URL".*"msg":"not ready: ANNOTATIONS_URL/);

    const annotations = await startDevAnnotationsServer({ port, dbPath: join(example.root, "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    expect(await readyzUntil(example.url, 200)).toEqual({ status: 200, body: { status: "ready", checks: { annotations: { ok: true }, storage: { ok: true } } } });
    expect((await upload(example.url, example.token, "p.png", samplePng(16, 16, 2))).status).toBe(200);
    // The request log has the uploads, not the probe polled meanwhile: the changes of readiness
    // are logged once each, above.
    await example.match(/"statusCode":200.*"msg":"request completed"/);
    expect(example.lines().filter((line) => line.includes("/readyz"))).toEqual([]);
    await example.kill();
  });

  it("REDIS_URL with nothing listening: starts, /readyz 503 naming it, uploads 503 JOURNAL_UNAVAILABLE with Retry-After at once", async () => {
    const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(await makeTempDir(), "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const example = await startExample(annotations.url, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const down = await readyz(example.url);
    expect(down.status).toBe(503);
    expect(down.body.checks.redis).toMatchObject({ ok: false, variable: "REDIS_URL", message: expect.stringContaining("REDIS_URL does not answer PING") });
    expect(down.body.checks.annotations).toEqual({ ok: true });
    for (const [route, seed] of [["/detect", 5], ["/detect-multer", 6]] as const) {
      expect(await upload(example.url, example.token, "p.png", samplePng(16, 16, seed), route)).toMatchObject({ status: 503, retryAfter: "5", body: { error: { code: "JOURNAL_UNAVAILABLE" } } });
    }
    expect(await (await fetch(`${example.url}/healthz`)).json()).toEqual({ status: "ok" });
    await example.match(/"level":50,.*"variable":"REDIS_URL".*"msg":"not ready: REDIS_URL/);
    // Redis out of reach is the check's to report: no stack on stderr.
    expect(example.stderr()).toBe("");
    await example.kill();
  });

  for (const [variable, key, name, bytes] of [
    ["IMAGES_DIR", "imagesDir", "p.png", samplePng(16, 16, 3)],
    ["VIDEOS_DIR", "videosDir", "v.mp4", sampleMp4(20_000, 4)],
  ] as const) {
    it(`${variable} made read-only while it runs: /readyz 503 naming it, uploads 503/507 (not 500) without the raw error, the log names ${variable}`, async () => {
      const root = await makeTempDir();
      const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), jwtSecret: secret });
      onTestFinished(() => annotations.close());
      const example = await startExample(annotations.url);
      expect((await readyz(example.url)).status).toBe(200);

      // A read-only bind mount: the tests run as root, whom a chmod 0o500 would not stop.
      const folder = example.directories[key];
      await mkdir(folder, { recursive: true });
      execFileSync("mount", ["--bind", folder, folder]);
      mounted.push(folder);
      execFileSync("mount", ["-o", "remount,bind,ro", folder]);

      const ready = await readyz(example.url);
      expect(ready.status).toBe(503);
      expect(ready.body.checks.storage).toEqual({ ok: false, variable, message: `${variable} (${folder}) cannot be written: read-only (EROFS).` });
      const refused = await upload(example.url, example.token, name, bytes);
      expect([503, 507]).toContain(refused.status);
      expect(refused.retryAfter).toBe("5");
      expect(refused.body.error?.message).not.toMatch(/EROFS|EPERM|EACCES|\.media-intake-journal|\/.+\//);
      // The upload's own error line names the variable (besides /readyz's "not ready" line).
      await example.match(new RegExp(`"level":50,.*"url":"/detect"\\},"variable":"${variable}",.*"msg":"${variable} \\(`));

      execFileSync("umount", [mounted.pop() as string]);
      expect((await readyz(example.url)).status).toBe(200);
      expect((await upload(example.url, example.token, name, bytes)).status).toBe(200);
      await example.kill();
    });
  }

  it("a storage volume nearly full: /readyz 503 naming VIDEOS_DIR and its free space, ready again once space is freed", async () => {
    const volume = await mountSmallTmpfs(16 * 2 ** 20);
    onTestFinished(() => volume.unmount());
    const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(await makeTempDir(), "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const videosDir = join(volume.path, "videos");
    // The floor is the smaller of MAX_UPLOAD_BYTES and 64 MiB: 4 MiB here.
    const example = await startExample(annotations.url, { VIDEOS_DIR: videosDir, IMAGES_DIR: join(volume.path, "images"), MAX_UPLOAD_BYTES: "4MiB" });
    onTestFinished(() => example.kill());
    expect((await readyz(example.url)).status).toBe(200);

    const filler = join(volume.path, "filler");
    await volume.fillUp(filler, 2 ** 20);
    const full = await readyz(example.url);
    expect(full.status).toBe(503);
    expect(full.body.checks.storage).toEqual({ ok: false, variable: "VIDEOS_DIR", message: `VIDEOS_DIR (${videosDir}) has 1 MiB free, under the 4 MiB an upload may need: uploads would fail with 507. Free space on its volume.` });
    await example.match(/"level":50,.*"variable":"VIDEOS_DIR".*"msg":"not ready: VIDEOS_DIR \(.*\) has 1 MiB free/);

    await rm(filler);
    expect(await readyz(example.url)).toMatchObject({ status: 200, body: { status: "ready" } });
  });

  it("an annotations service that accepts and never answers: an upload is answered 503 MEDIA_RECORD_PENDING within ANNOTATIONS_REQUEST_DEADLINE_MS, its file kept; a stop then does not wait for the service", async () => {
    const hung = createServer(() => {});
    hung.listen(0, "127.0.0.1");
    await once(hung, "listening");
    onTestFinished(() => new Promise<void>((resolve) => hung.close(() => resolve())));
    hung.on("connection", (socket) => onTestFinished(() => void socket.destroy()));
    const annotationsUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    const example = await startExample(annotationsUrl, { SHUTDOWN_TIMEOUT_MS: "1000" });
    const png = samplePng(16, 16, 9);
    const started = performance.now();
    const form = new FormData();
    form.append("file", new Blob([png as Uint8Array<ArrayBuffer>]), "p.png");
    // The default deadline is 5 s; 41 s (four attempts of ANNOTATIONS_TIMEOUT_MS) would fail here.
    const response = await fetch(`${example.url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${example.token}` }, signal: AbortSignal.timeout(8_000) });
    expect(performance.now() - started).toBeGreaterThanOrEqual(5_000);
    const id = await computeMediaId(png);
    expect({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() }).toMatchObject({
      status: 503,
      retryAfter: "5",
      body: { error: { code: "MEDIA_RECORD_PENDING", mediaId: id } },
    });
    // Kept: a timeout after the request was sent is no refusal.
    expect(await filesUnder(example.directories.imagesDir)).toEqual([`${id}.png`]);

    // The record's creation goes on in the background; the stop does not wait for the service.
    const exited = once(example.child, "exit");
    example.child.kill("SIGTERM");
    expect(await exited).toEqual([0, null]);
  });
});
