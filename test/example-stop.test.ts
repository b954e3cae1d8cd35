// The example's processes stop cleanly: a signal to `npm run …` reaches the node process (the
// scripts exec it), and a graceful stop lets the uploads under way finish within
// SHUTDOWN_TIMEOUT_MS, then exits (1, naming the variable, when the limit cut some).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, watch } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { startChild } from "./helpers/child.ts";
import { useDevFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "example-stop-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
const root = resolve(import.meta.dirname, "..");

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
});

/** `npm run <script>`, its stdout's lines awaitable; the npm process and its node child SIGKILLed after the test. */
function npmRun(script: string, args: string[], env: NodeJS.ProcessEnv) {
  const npm = spawn("npm", ["run", script, ...(args.length ? ["--", ...args] : [])], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  started.push(npm.pid as number);
  const lines: string[] = [];
  createInterface({ input: npm.stdout }).on("line", (line) => lines.push(line));
  const match = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      createInterface({ input: npm.stdout }).on("line", (line) => {
        const found = line.match(pattern);
        if (found) resolve(found);
      });
      npm.once("exit", (code) => reject(new Error(`npm exited (${code}) before ${pattern}`)));
    });
  return { npm, lines, match };
}

/** The node process npm runs (its only child, the shell having exec'd it). */
function childOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  started.push(children[0] as number);
  return children[0] as number;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Whether the port can be listened on again. */
async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, "127.0.0.1");
  const [event] = await Promise.race([once(server, "listening").then(() => ["listening"]), once(server, "error").then(() => ["error"])]);
  if (event === "listening") await new Promise((r) => server.close(r));
  return event === "listening";
}

async function stopsWithItsChild(run: ReturnType<typeof npmRun>, url: string, signal: NodeJS.Signals) {
  const node = childOf(run.npm.pid as number);
  // "close": after its output is read to the end.
  const exited = once(run.npm, "close");
  run.npm.kill(signal);
  await exited;
  expect(alive(node)).toBe(false);
  expect(await portIsFree(Number(new URL(url).port))).toBe(true);
}

describe("a signal to npm run stops the node process with it", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("npm run example:express, then %s to npm: its node child is gone, its port free", async (signal) => {
    const run = npmRun("example:express", [], { PORT: "0", ANNOTATIONS_URL: fixture.annotations.url, VIDEOS_DIR: fixture.directories.videosDir, IMAGES_DIR: fixture.directories.imagesDir, JWT_SECRET: secret });
    const [, url] = (await run.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    await stopsWithItsChild(run, url as string, signal);
    expect(run.lines.some((line) => line.includes('"code":0,"msg":"stopped"')), run.lines.join("\n")).toBe(true);
  });

  it("npm run dev-annotations, then SIGTERM to npm: its node child is gone, its port free", async () => {
    const run = npmRun("dev-annotations", ["--port", "0", "--db", join(fixture.root, "dev.db")], {});
    const [, url] = (await run.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)) as RegExpMatchArray;
    await stopsWithItsChild(run, url as string, "SIGTERM");
  });
});

/** A multipart body with one PNG, and its boundary. */
function pngForm() {
  const boundary = "----stop";
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n`);
  const body = Buffer.concat([head, Buffer.from(samplePng(20, 20, 7)), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { boundary, body };
}

/** Starts an upload on a raw socket and resolves once the server took it on (its 100 Continue). */
async function startUpload(url: string) {
  const { boundary, body } = pngForm();
  const socket = connect(Number(new URL(url).port), "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  const continued = new Promise<void>((resolve) => socket.on("data", () => received.includes("100 Continue") && resolve()));
  socket.write(
    `POST /detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fixture.token}\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  await continued;
  return { socket, body, received: () => received };
}

const serverEnv = (shutdownTimeoutMs: number) => ({
  PORT: "0",
  ANNOTATIONS_URL: fixture.annotations.url,
  VIDEOS_DIR: fixture.directories.videosDir,
  IMAGES_DIR: fixture.directories.imagesDir,
  JWT_SECRET: secret,
  SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
});

describe("SHUTDOWN_TIMEOUT_MS", () => {
  it("on SIGTERM, an upload under way finishes and is answered, new connections are refused, then exit 0", async () => {
    const example = startChild(resolve(root, "examples/express/server.ts"), null, serverEnv(60_000));
    const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    const upload = await startUpload(url as string);
    const exited = once(example.child, "exit");
    example.child.kill("SIGTERM");
    await example.match(/"requests":1,.*"msg":"stopping: the requests under way finish first \(SHUTDOWN_TIMEOUT_MS=60000\)"/);
    // No longer listening: a new upload cannot start.
    const refused = connect(Number(new URL(url as string).port), "127.0.0.1");
    expect(((await once(refused, "error")) as [NodeJS.ErrnoException])[0].code).toBe("ECONNREFUSED");
    // The slow client sends the rest now, and gets its answer.
    upload.socket.write(upload.body);
    await once(upload.socket, "close");
    expect(upload.received()).toMatch(/HTTP\/1\.1 200 OK/);
    expect(upload.received()).toMatch(/Connection: close/i);
    expect(upload.received()).toContain('"name":"slow.png"');
    expect(await exited).toEqual([0, null]);
  });

  it("an upload that does not finish in time is cut: exit 1, and the log names SHUTDOWN_TIMEOUT_MS", async () => {
    const example = startChild(resolve(root, "examples/express/server.ts"), null, serverEnv(300));
    const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    const upload: { socket: Socket } = await startUpload(url as string);
    const closed = once(upload.socket, "close");
    const exited = once(example.child, "exit");
    example.child.kill("SIGTERM");
    expect(await exited).toEqual([1, null]);
    await closed;
    const cut = example.lines().find((line) => line.includes("ran out"));
    expect(JSON.parse(cut as string)).toMatchObject({ level: 50, requests: 1, msg: "stopping: SHUTDOWN_TIMEOUT_MS (300 ms) ran out; raise SHUTDOWN_TIMEOUT_MS to let uploads finish: 1 request(s) under way were cut" });
  });
});


/** Resolves once a temp file (`*.partial`) appears in `dir`: the store is writing an upload. */
function partialAppears(dir: string): Promise<void> {
  return new Promise((resolve) => {
    const watcher = watch(dir, (_event, name) => {
      if (!name?.endsWith(".partial")) return;
      watcher.close();
      resolve();
    });
  });
}

describe("SHUTDOWN_TIMEOUT_MS runs out during a large, slow upload", () => {
  it.each(["/detect", "/detect-multer"])("%s: the client is answered 503 with Retry-After, the temp file is removed before the exit (1)", async (route) => {
    const example = startChild(resolve(root, "examples/express/server.ts"), null, serverEnv(300));
    const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    // 64 MB declared, 2 MB sent: the store is writing it when the stop comes, and it never ends.
    const boundary = "----cut";
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const video = sampleMp4(64_000_000, 3);
    const socket = connect(Number(new URL(url as string).port), "127.0.0.1");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.on("error", () => {});
    const closed = once(socket, "close");
    const writing = partialAppears(fixture.directories.videosDir);
    socket.write(
      `POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fixture.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + video.length + tail.length}\r\n\r\n`,
    );
    socket.write(Buffer.concat([head, video.subarray(0, 2_000_000)]));
    await writing;

    const exited = once(example.child, "exit");
    example.child.kill("SIGTERM");
    expect(await exited).toEqual([1, null]);
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(received).toMatch(/\r\nRetry-After: 5\r\n/i);
    expect(received).toMatch(/\r\nConnection: close\r\n/i);
    expect(received).toContain('"code":"SERVICE_STOPPING"');
    // Nothing half-written is left: no temp file, no media file.
    expect((await filesUnder(fixture.directories.videosDir)).filter((path) => !path.startsWith(".media-intake-journal/"))).toEqual([]);
    expect(example.lines().some((line) => line.includes('"level":50') && line.includes("ran out; raise SHUTDOWN_TIMEOUT_MS"))).toBe(true);
  });
});
