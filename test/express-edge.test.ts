// The example service at its edge, as clients and operators meet it: UTF-8 names, cut bodies,
// early refusals on big uploads, JSON for every answer (Node's own included), no internal path
// in any answer, one structured log line per request, and a listen error that stops the process.
import { once } from "node:events";
import { execFileSync } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { serve } from "../examples/express/serve.ts";
import { samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient } from "../src/index.ts";
import { startChild } from "./helpers/child.ts";
import { signToken, useDevFixture } from "./helpers/fixture.ts";
import { noisyPng } from "./helpers/possession.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "express-edge-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
let app: Awaited<ReturnType<typeof serve>>;
let logLines: Array<Record<string, unknown>>;
let logWaiters: Array<() => void> = [];

/** Resolves once a log line matching `match` was written (at once when one was). */
async function logged(match: (line: Record<string, any>) => boolean): Promise<Record<string, any>> {
  for (;;) {
    const line = logLines.find(match);
    if (line) return line;
    await new Promise<void>((resolve) => logWaiters.push(resolve));
  }
}

async function start(options: { requestTimeoutMs?: number } = {}) {
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
        for (const wake of logWaiters.splice(0)) wake();
        done();
      },
    }),
  );
  const express = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.serviceToken, retry: false }),
    directories: fixture.directories,
    auth: { verify: { secret } },
    logger,
    maxUploadBytes: 30 * 2 ** 20,
  });
  return serve(express, { host: "127.0.0.1", port: 0, logger, ...options });
}

beforeEach(async () => {
  logLines = [];
  logWaiters = [];
  app = await start();
});
afterEach(async () => {
  app.server.closeAllConnections();
  await new Promise((r) => app.server.close(r));
});

const storedFiles = async () => (await filesUnder(fixture.root)).filter((path) => /^(videos|images)\/[^.]/.test(path) || path.endsWith(".partial"));

/** Sends raw bytes on a socket and resolves to everything the server answered before closing. */
async function raw(request: string | Buffer, keepOpen = false): Promise<string> {
  const { port } = new URL(app.url);
  const socket = connect(Number(port), "127.0.0.1");
  await once(socket, "connect");
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.write(request);
  if (!keepOpen) socket.end();
  await once(socket, "close");
  return Buffer.concat(chunks).toString();
}

function formBytes(name: string, bytes: Uint8Array, boundary = "----edge"): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** The same form as a fetch body. */
const form = (name: string, bytes: Uint8Array) => new Blob([formBytes(name, bytes) as Uint8Array<ArrayBuffer>]);

describe("the example's edge", () => {
  it("keeps UTF-8 file names on /detect and /detect-multer", async () => {
    for (const [route, seed] of [["/detect", 1], ["/detect-multer", 2]] as const) {
      const body = form("відео 🎬.png", samplePng(16, 16, seed));
      const response = await fetch(`${app.url}${route}`, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${fixture.token}`, "content-type": "multipart/form-data; boundary=----edge" },
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { media: { name: string } }).media.name).toBe("відео 🎬.png");
    }
  });

  it("a body cut after the file part (no closing boundary) is refused and keeps nothing", async () => {
    const png = samplePng(20, 20, 3);
    const whole = formBytes("cut.png", png);
    const cut = whole.subarray(0, whole.length - "\r\n------edge--\r\n".length);
    const answer = await raw(
      Buffer.concat([
        Buffer.from(`POST /detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fixture.token}\r\nContent-Type: multipart/form-data; boundary=----edge\r\nContent-Length: ${cut.length}\r\nConnection: close\r\n\r\n`),
        cut,
      ]),
      true,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"BAD_FORM"');
    expect(await storedFiles()).toEqual([]);
    // The whole file arrived, only the form's end did not: no record of it either.
    const record = await fetch(`${fixture.annotations.url}/api/media/${await computeMediaId(png)}`, { headers: { authorization: `Bearer ${fixture.token}` } });
    expect(record.status).toBe(404);
  });

  it("an early refusal of a 20 MiB upload answers at once on a healthy connection", async () => {
    const notAnImage = new Uint8Array(20 * 2 ** 20).fill(7);
    const response = await fetch(`${app.url}/detect`, {
      method: "POST",
      body: form("fake.png", notAnImage),
      headers: { authorization: `Bearer ${fixture.token}`, "content-type": "multipart/form-data; boundary=----edge" },
    });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ error: { code: "MEDIA_CONTENT_MISMATCH" } });
    expect(await storedFiles()).toEqual([]);
  });

  it.each(["close", "keep-alive"])("a refused 20 MiB upload on a %s connection: the client gets the 415, never a broken pipe", async (connection) => {
    const agent = new Agent({ keepAlive: connection === "keep-alive" });
    try {
      for (const [name, code] of [["fake.png", "MEDIA_CONTENT_MISMATCH"], ["notes.txt", "UNSUPPORTED_MEDIA_TYPE"]] as const) {
        const body = formBytes(name, new Uint8Array(20 * 2 ** 20).fill(7));
        // A real client that writes the whole body (with backpressure) whatever the server answers meanwhile.
        const req = request(`${app.url}/detect`, {
          method: "POST",
          agent,
          headers: { authorization: `Bearer ${fixture.token}`, "content-type": "multipart/form-data; boundary=----edge", "content-length": body.length, connection },
        });
        let sent = 0;
        const failed = new Promise<never>((_, reject) => req.once("error", reject));
        const finished = once(req, "finish");
        finished.catch(() => {});
        const answered = new Promise<{ status: number; text: string }>((resolveAnswer) =>
          req.once("response", (res) => {
            let text = "";
            res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
            res.once("end", () => resolveAnswer({ status: res.statusCode ?? 0, text }));
          }),
        );
        const pump = () => {
          while (sent < body.length) {
            const chunk = body.subarray(sent, sent + 65_536);
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once("drain", pump);
          }
          req.end();
        };
        pump();
        const { status, text } = await Promise.race([answered, failed]);
        // Kept alive, Node's client stops sending once it has the whole answer (no error); on a
        // connection that closes after the answer, the server reads the body first.
        if (connection === "close") await Promise.race([finished, failed]);
        expect(status).toBe(415);
        if (connection === "close") expect(sent).toBe(body.length);
        expect(JSON.parse(text)).toMatchObject({ error: { code } });
      }
    } finally {
      agent.destroy();
    }
    expect(await storedFiles()).toEqual([]);
  });

  it("answers JSON to an unknown route, an oversized header and a request that takes too long", async () => {
    const missing = await fetch(`${app.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "NOT_FOUND", message: "No route for GET /nope." } });

    const big = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toContain('{"error":{"code":"HEADERS_TOO_LARGE"');

    app.server.closeAllConnections();
    await new Promise((r) => app.server.close(r));
    app = await start({ requestTimeoutMs: 300 });
    const slow = await raw(
      `POST /detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fixture.token}\r\nContent-Type: multipart/form-data; boundary=----edge\r\nContent-Length: 100000\r\n\r\n------edge\r\n`,
      true,
    );
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow).toContain('{"error":{"code":"REQUEST_TIMEOUT"');
  });

  it("a server-side failure answers 500 without paths or raw messages, and logs the cause", async () => {
    const uploaded = await fetch(`${app.url}/detect`, {
      method: "POST",
      body: form("gone.png", samplePng(18, 18, 4)),
      headers: { authorization: `Bearer ${fixture.token}`, "content-type": "multipart/form-data; boundary=----edge" },
    });
    const { media } = (await uploaded.json()) as { media: { id: string; path: string } };
    // A directory where the file was: the detector fails on it (a missing file is a 409 of its own).
    await rm(media.path);
    await mkdir(media.path);
    const rerun = await fetch(`${app.url}/detect/${media.id}`, { method: "POST", headers: { authorization: `Bearer ${fixture.token}` } });
    expect(rerun.status).toBe(500);
    const text = await rerun.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "INTERNAL", message: "Internal error." } });
    expect(text).not.toContain(fixture.root);
    const logged = logLines.find((line) => line.msg === "request failed");
    expect(JSON.stringify(logged)).toContain("EISDIR");
  });

  it("a path that is not valid percent-encoding: 400 saying so, token or not, logged at info without a stack", async () => {
    for (const [method, path] of [["GET", "/media/%ZZ"], ["POST", "/possession/%ZZ"], ["POST", "/detect/%ZZ"], ["GET", "/media/%C3"]]) {
      for (const headers of [{}, { authorization: `Bearer ${fixture.token}` }] as Array<Record<string, string>>) {
        const response = await fetch(`${app.url}${path}`, { method, headers });
        expect({ status: response.status, body: await response.json() }).toEqual({
          status: 400,
          body: { error: { code: "BAD_REQUEST", message: `The path "${path}" is not valid percent-encoding: a "%" must be followed by two hex digits, and together they must make UTF-8 (as %C3%A9 for "é").` } },
        });
      }
      const line = await logged((entry) => entry.req?.url === path);
      expect(line).toMatchObject({ level: 30, res: { statusCode: 400 } });
    }
    expect(logLines.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
    expect(JSON.stringify(logLines)).not.toContain("URIError");
  });

  it("logs a media ID collision at warn with the uploader's user ID: other bytes under a stored ID (the ID's samples copied), refused 409", async () => {
    const png = noisyPng();
    const stored = await fetch(`${app.url}/detect`, { method: "POST", body: form("alice.png", png), headers: { authorization: `Bearer ${fixture.token}`, "content-type": "multipart/form-data; boundary=----edge" } });
    const { media } = (await stored.json()) as { media: { id: string } };
    // The size and the first, middle and last KiB of alice's file; other bytes elsewhere.
    const forged = Buffer.from(png);
    forged.fill(0x55, 10_000, 20_000);
    expect(await computeMediaId(forged)).toBe(media.id);
    const mallory = await signToken("mallory", secret, "5m");
    const response = await fetch(`${app.url}/detect`, { method: "POST", body: form("guess.png", forged), headers: { authorization: `Bearer ${mallory}`, "content-type": "multipart/form-data; boundary=----edge" } });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: { code: "MEDIA_ID_COLLISION" } });
    const line = await logged((entry) => typeof entry.msg === "string" && entry.msg.startsWith("media ID collision"));
    expect(line).toMatchObject({ level: 40, id: media.id, userId: "mallory" });
  });

  it("logs one line per request, without the bearer token", async () => {
    await fetch(`${app.url}/media/0000000000000001`, { headers: { authorization: `Bearer ${fixture.token}` } });
    const line = logLines.find((entry) => (entry.req as { url?: string } | undefined)?.url === "/media/0000000000000001");
    expect(line).toMatchObject({ req: { method: "GET" }, res: { statusCode: 404 } });
    expect(JSON.stringify(logLines)).not.toContain(fixture.token);
  });
});

describe("npm run example:express at start", () => {
  it("on a read-only volume, exits 1 with one line on stderr naming the folder's variable", async () => {
    // We run as root, so a chmod would not stop a write: a read-only bind mount does.
    const volume = join(fixture.root, "volume");
    await mkdir(join(volume, "images"), { recursive: true });
    execFileSync("mount", ["--bind", volume, volume]);
    try {
      execFileSync("mount", ["-o", "remount,bind,ro", volume]);
      for (const [videosDir, imagesDir, variable] of [
        [join(volume, "videos"), fixture.directories.imagesDir, "VIDEOS_DIR"],
        [fixture.directories.videosDir, join(volume, "images"), "IMAGES_DIR"],
      ] as const) {
        const example = startChild(resolve(import.meta.dirname, "../examples/express/server.ts"), null, {
          PORT: "0",
          ANNOTATIONS_URL: fixture.annotations.url,
          VIDEOS_DIR: videosDir,
          IMAGES_DIR: imagesDir,
          JWT_SECRET: secret,
        });
        // "close": after its stderr is read to the end.
        const [code] = (await once(example.child, "close")) as [number];
        expect(code).toBe(1);
        const dir = variable === "VIDEOS_DIR" ? videosDir : imagesDir;
        const [line, ...rest] = example.stderr().split("\n");
        expect(rest).toEqual([""]);
        expect(line).toMatch(/^Cannot start: [A-Z_]+ \(.+\) cannot be written: .+\.$/);
        expect(line).toContain(`${variable} (${dir})`);
      }
    } finally {
      execFileSync("umount", [volume]);
    }
  });


  it("exits non-zero with one line naming PORT when its port is taken, and HOST when it is no address", async () => {
    const start = async (host: string, port: string) => {
      const example = startChild(resolve(import.meta.dirname, "../examples/express/server.ts"), null, {
        HOST: host,
        PORT: port,
        ANNOTATIONS_URL: fixture.annotations.url,
        VIDEOS_DIR: fixture.directories.videosDir,
        IMAGES_DIR: fixture.directories.imagesDir,
        JWT_SECRET: secret,
      });
      const [code] = (await once(example.child, "close")) as [number];
      return { code, fatal: example.lines().map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.level === 60) };
    };
    const port = new URL(app.url).port;
    expect(await start("127.0.0.1", port)).toEqual({
      code: 1,
      fatal: [expect.objectContaining({ msg: `Cannot listen on 127.0.0.1:${port}: PORT=${port} is in use on HOST=127.0.0.1 (EADDRINUSE); stop what listens there or choose another PORT.` })],
    });
    expect(await start("999.1.1.1", "0")).toEqual({
      code: 1,
      fatal: [expect.objectContaining({ msg: expect.stringMatching(/^Cannot listen on 999\.1\.1\.1:0: HOST=999\.1\.1\.1 does not resolve \((ENOTFOUND|EAI_AGAIN)\); give an address of this machine/) })],
    });
  });
});
