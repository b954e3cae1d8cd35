// One message per refusal: the Express example's three upload routes (/detect, /detect-multer and
// the tus /files) refuse the same upload with the same status, code and message, over real HTTP.
import { once } from "node:events";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { sampleMp4 } from "../examples/sample-media.ts";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createAnnotationsClient } from "../src/index.ts";
import { startServer } from "./helpers/http-server.ts";
import { signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const secret = "express-refusals-secret-0123456789abcdef";
const MiB = 2 ** 20;
const started: Array<{ close: () => Promise<void> }> = [];
let url: string;
let root: string;
let token: string;

beforeEach(async () => {
  root = await makeTempDir();
  const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotations.url, token: await signToken("detections-service", secret, "5m") }),
    directories: storageDirectoriesIn(root),
    auth: { verify: { secret } },
    maxUploadBytes: MiB,
  });
  const server = await startServer((req, res) => app(req, res));
  started.push(server, annotations);
  url = server.url;
  token = await signToken("alice", secret, "5m");
});
afterEach(async () => {
  for (const one of started.splice(0)) await one.close();
});

type Refusal = { status: number; code: string; message: string };

async function refusal(response: Response): Promise<Refusal> {
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: error.code, message: error.message };
}

/** `bytes` named `name` to a multipart route. */
function multipart(route: string, bytes: Uint8Array, name: string) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  return fetch(`${url}${route}`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } }).then(refusal);
}

const tusHeaders = (more: Record<string, string>) => ({ authorization: `Bearer ${token}`, "tus-resumable": "1.0.0", ...more });
const filename = (name: string) => `filename ${Buffer.from(name).toString("base64")}`;

/** A tus creation of `length` bytes (or a deferred length) named `name`. */
function tusCreate(name: string, length: number | "deferred") {
  const size: Record<string, string> = length === "deferred" ? { "upload-defer-length": "1" } : { "upload-length": String(length) };
  return fetch(`${url}/files`, { method: "POST", headers: tusHeaders({ "upload-metadata": filename(name), ...size }) });
}

async function storedFiles(): Promise<string[]> {
  return (await filesUnder(root)).filter((path) => path.startsWith("videos/") || path.startsWith("images/"));
}

describe("the example's upload routes refuse alike", () => {
  it("413: one message, with the limit in it, on /detect, /detect-multer and /files (at creation and past it on a deferred length)", async () => {
    const big = sampleMp4(MiB + 64 * 1024);
    const expected: Refusal = { status: 413, code: "MEDIA_TOO_LARGE", message: "The upload is over the limit of 1 MiB (1048576 bytes)." };
    expect(await multipart("/detect", big, "big.mp4")).toEqual(expected);
    expect(await multipart("/detect-multer", big, "big.mp4")).toEqual(expected);
    expect(await tusCreate("big.mp4", big.length).then(refusal)).toEqual(expected);
    // A deferred length: the bytes pass the limit in a PATCH.
    const created = await tusCreate("big.mp4", "deferred");
    expect(created.status).toBe(201);
    const patch = await fetch(new URL(created.headers.get("location") as string, `${url}/files/`), {
      method: "PATCH",
      headers: tusHeaders({ "upload-offset": "0", "content-type": "application/offset+octet-stream" }),
      body: big as Uint8Array<ArrayBuffer>,
    });
    expect(await refusal(patch)).toEqual(expected);
    expect(await storedFiles()).toEqual([]);
  });

  it("413 before the body is read, for a Content-Length far above the limit, on /detect and /detect-multer", async () => {
    const expected = { status: 413, code: "MEDIA_TOO_LARGE", message: "The upload is over the limit of 1 MiB (1048576 bytes)." };
    for (const route of ["/detect", "/detect-multer"]) {
      // Only the headers are sent: the answer must come without a byte of the declared 10 MiB.
      const req = httpRequest(`${url}${route}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "multipart/form-data; boundary=x", "content-length": String(10 * MiB) },
      });
      req.flushHeaders();
      const [response] = (await once(req, "response")) as [IncomingMessage];
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      req.destroy();
      const { error } = JSON.parse(Buffer.concat(chunks).toString()) as { error: { code: string; message: string } };
      expect({ status: response.statusCode, ...error }).toEqual(expected);
    }
    expect(await storedFiles()).toEqual([]);
  });

  it("415: one message on /detect, /detect-multer and /files for a type it does not take", async () => {
    const answers = [
      await multipart("/detect", Buffer.from("hello"), "notes.txt"),
      await multipart("/detect-multer", Buffer.from("hello"), "notes.txt"),
      await tusCreate("notes.txt", 5).then(refusal),
    ];
    expect(answers[0]).toMatchObject({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: expect.stringContaining('"notes.txt"') });
    expect(answers).toEqual([answers[0], answers[0], answers[0]]);
  });
});
