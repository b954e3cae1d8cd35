// A tus PATCH on a nearly full disk, over real HTTP, on a real 2 MiB tmpfs: the first write of
// the PATCH comes back short, then space is freed while the body is still arriving. The PATCH
// must never answer 2xx for bytes that are not on disk: either every byte is stored as sent, or
// it fails (507), the upload's offset is what is on disk, and a resume stores the right bytes.
// A creation (POST) on a full disk answers 507 and leaves nothing; the empty upload and empty
// metadata an older version left that way are swept once expired, logged once, never every pass.
// Mounting needs root: where it is impossible this test fails with the reason (helpers/tmpfs.ts).
import { once } from "node:events";
import { unlinkSync } from "node:fs";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { type IncomingMessage, request } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient } from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { startFakeAnnotationsServer } from "./helpers/fake-annotations.ts";
import { signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { mountSmallTmpfs, type SmallTmpfs } from "./helpers/tmpfs.ts";

const secret = "k".repeat(32);
let disk: SmallTmpfs;
const closing: Array<() => Promise<void>> = [];

beforeAll(async () => {
  disk = await mountSmallTmpfs(2 << 20);
});
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});
afterAll(async () => {
  await disk?.unmount();
});

/** One request to the tus server; resolves with the answer (status, headers, body), or the error that ended it. */
function send(url: string, method: string, headers: Record<string, string>, body?: (req: ReturnType<typeof request>, answered: () => boolean) => Promise<void>) {
  const req = request(url, { method, headers });
  let done = false;
  const answered = new Promise<{ status: number; headers: IncomingMessage["headers"]; body: string } | { error: Error }>((resolve) => {
    req.on("response", async (res) => {
      let text = "";
      for await (const chunk of res) text += String(chunk);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
    });
    req.on("error", (error) => resolve({ error }));
  }).finally(() => (done = true));
  if (!body) req.end();
  // A failure to send is seen in the answer (an error, or what the server said).
  else body(req, () => done).catch((error: unknown) => req.destroy(error as Error));
  return answered;
}

it("a PATCH whose first write comes back short, space freed meanwhile: never a 2xx for bytes not on disk", async () => {
  const root = join(disk.path, "d");
  const directories = storageDirectoriesIn(root);
  await mkdir(root);
  const service = await startFakeAnnotationsServer();
  closing.push(service.close);
  const tus: TusIntake = createTusIntake({ directories, client: createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false }), auth: { verify: { secret } }, sweepIntervalMs: 0 });
  closing.push(() => tus.close());
  const server = await startServer((req, res) => void tus.handle(req, res));
  closing.push(server.close);
  const token = await signToken("alice", secret, "1h");
  const tusHeaders = { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` };
  const content = sampleMp4(900_000, 3);

  const created = await send(`${server.url}/files`, "POST", { ...tusHeaders, "upload-length": String(content.byteLength), "upload-metadata": `filename ${Buffer.from("clip.mp4").toString("base64")}` });
  expect(created).toMatchObject({ status: 201 });
  const location = (created as { headers: IncomingMessage["headers"] }).headers.location!;
  const uploadUrl = new URL(location, `${server.url}/files/`).href;
  const file = join(tus.uploadsDir, location.split("/").at(-1)!);

  // 100 KiB free: the PATCH's first 256 KiB write takes 100 KiB.
  const filler = join(root, "filler");
  await disk.fillUp(filler, 100 << 10);
  const first = (256 << 10) + 1000;
  const patched = await send(uploadUrl, "PATCH", { ...tusHeaders, "content-type": "application/offset+octet-stream", "upload-offset": "0", "content-length": String(content.byteLength) }, async (req, answered) => {
    req.write(content.subarray(0, first));
    // The short write is on disk (the file holds what fitted); then space is freed, and the
    // rest of the body sent. Polled on the event loop, not slept on.
    while ((await stat(file)).size < 100 << 10 && !answered()) await new Promise((resolve) => setImmediate(resolve));
    unlinkSync(filler);
    req.end(content.subarray(first));
    await once(req, "finish").catch(() => {});
  });

  const id = await computeMediaId(content);
  if ("status" in patched && patched.status < 300) {
    // Every byte went in: the media holds exactly what was sent.
    expect(patched.status).toBe(200);
    expect((await readFile(join(directories.videosDir, `${id}.mp4`))).equals(content)).toBe(true);
    return;
  }
  if ("status" in patched) expect(patched).toMatchObject({ status: 507, body: expect.stringContaining("INSUFFICIENT_STORAGE") });
  // Not stored: the upload's offset is what is on disk, and that is a true prefix of the upload.
  const head = await send(uploadUrl, "HEAD", tusHeaders);
  expect(head).toMatchObject({ status: 200 });
  const offset = Number((head as { headers: IncomingMessage["headers"] }).headers["upload-offset"]);
  const kept = await readFile(file);
  expect(kept.byteLength).toBe(offset);
  expect(kept.equals(content.subarray(0, offset))).toBe(true);
  // The resume from there stores the right bytes.
  const resumed = await send(uploadUrl, "PATCH", { ...tusHeaders, "content-type": "application/offset+octet-stream", "upload-offset": String(offset) }, async (req) => {
    req.end(content.subarray(offset));
  });
  expect(resumed).toMatchObject({ status: 200 });
  expect((resumed as { headers: IncomingMessage["headers"] }).headers["media-id"]).toBe(id);
  expect((await readFile(join(directories.videosDir, `${id}.mp4`))).equals(content)).toBe(true);
});

it("a creation on a full disk answers 507 and leaves nothing; the empty upload and metadata it once left are swept once expired, logged once", async () => {
  const root = join(disk.path, "e");
  const directories = storageDirectoriesIn(root);
  await mkdir(root);
  const service = await startFakeAnnotationsServer();
  closing.push(service.close);
  const lines: Array<{ fields: Record<string, unknown>; message: string | undefined }> = [];
  const logger = { warn: (fields: Record<string, unknown>, message?: string) => void lines.push({ fields, message }) };
  const expireAfterMs = 60_000;
  const tus: TusIntake = createTusIntake({ directories, client: createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false }), auth: { verify: { secret } }, sweepIntervalMs: 0, expireAfterMs, logger });
  closing.push(() => tus.close());
  const server = await startServer((req, res) => void tus.handle(req, res));
  closing.push(server.close);
  const token = await signToken("alice", secret, "1h");
  const tusHeaders = { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` };

  const filler = join(root, "filler");
  await disk.fillUp(filler, 0);
  try {
    const created = await send(`${server.url}/files`, "POST", { ...tusHeaders, "upload-length": "1000", "upload-metadata": `filename ${Buffer.from("clip.mp4").toString("base64")}` });
    expect(created).toMatchObject({ status: 507, body: expect.stringContaining("INSUFFICIENT_STORAGE") });
    expect(await readdir(tus.uploadsDir)).toEqual([]);
  } finally {
    unlinkSync(filler);
  }

  // What such a creation left before: an empty upload and an empty `.json`; one past the expiry, one fresh.
  const old = "a".repeat(32);
  const fresh = "b".repeat(32);
  for (const id of [old, fresh]) for (const name of [id, `${id}.json`]) await writeFile(join(tus.uploadsDir, name), "");
  const past = new Date(Date.now() - expireAfterMs - 10_000);
  for (const name of [old, `${old}.json`]) await utimes(join(tus.uploadsDir, name), past, past);
  const first = await tus.sweep();
  expect(first).toMatchObject({ removed: [old], failed: [] });
  expect((await readdir(tus.uploadsDir)).sort()).toEqual([fresh, `${fresh}.json`]);
  const second = await tus.sweep();
  expect(second).toMatchObject({ removed: [], failed: [] });
  // One line per upload, whatever the number of passes; none says "not swept".
  const swept = () => lines.filter((line) => line.fields.uploadId !== undefined);
  expect(swept().map((line) => line.fields.uploadId).sort()).toEqual([old, fresh]);
  expect(swept().every((line) => /metadata/.test(String(line.message)) && !/not swept/.test(String(line.message)))).toBe(true);
  // Once expired, the fresh one goes too.
  for (const name of [fresh, `${fresh}.json`]) await utimes(join(tus.uploadsDir, name), past, past);
  expect(await tus.sweep()).toMatchObject({ removed: [fresh], failed: [] });
  expect(await readdir(tus.uploadsDir)).toEqual([]);
  expect(swept()).toHaveLength(2);
});
