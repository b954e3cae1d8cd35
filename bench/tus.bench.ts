// npm run bench:tus — resumable uploads against the multipart route, in one run, through the
// Express example as users run it (a fresh server and data directory per run, over loopback):
// 1. a 1 GiB file through /files with tus-js-client (64 MiB chunks) and through /detect as one
//    multipart POST, interleaved, medians of 3, each on a server warmed up by a small upload on
//    its route: throughput until the media is recorded (tus: and its detection started);
// 2. the finish step (the final PATCH of one byte, which makes the upload media: ID, link,
//    record) for a 1 GiB upload against a 1 MiB one, medians of 5: no copy means no difference.
//    The final byte goes to a second server process on the same data directory (as a replica
//    takes a resumed upload), warmed up, so that the garbage of streaming the bulk (full GCs in
//    the process that received it) is not counted as finishing.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { SignJWT } from "jose";
import { Upload } from "tus-js-client";
import { freshen, machine, median, writeMp4 } from "./lib.ts";

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const ROUNDS = 3;
const FINISH_ROUNDS = 5;
const secret = "bench-tus-secret-0123456789abcdef";
const token = `Bearer ${await new SignJWT({ sub: "bench" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode(secret))}`;
const work = await mkdtemp(join(tmpdir(), "bench-tus-"));


/** `npm run example:express` on a fresh data directory; resolves with its URL. */
async function startExample(dataRoot?: string): Promise<{ url: string; child: ChildProcess; root: string }> {
  const root = dataRoot ?? (await mkdtemp(join(work, "server-")));
  const child = spawn(process.execPath, [resolve(import.meta.dirname, "../examples/express/server.ts")], {
    env: { ...process.env, PORT: "0", JWT_SECRET: secret, VIDEOS_DIR: join(root, "videos"), IMAGES_DIR: join(root, "images"), LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((done, fail) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const match = line.match(/"msg":"listening on (http:\/\/[^"]+)"/);
      if (match) done(match[1] as string);
    });
    child.once("exit", (code) => fail(new Error(`the example exited (${code})`)));
  });
  return { url, child, root };
}

async function stopExample(example: { child: ChildProcess; root: string }, keepData = false): Promise<void> {
  const exited = once(example.child, "exit");
  example.child.kill("SIGTERM");
  await exited;
  if (!keepData) await rm(example.root, { recursive: true, force: true });
}

async function multipart(url: string, path: string, size: number): Promise<void> {
  const boundary = "----bench-tus";
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  await new Promise<void>((done, fail) => {
    const req = request(`${url}/detect`, { method: "POST", headers: { authorization: token, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": head.length + size + tail.length } }, (response) => {
      response.resume();
      response.on("end", () => (response.statusCode === 200 ? done() : fail(new Error(`/detect answered ${response.statusCode}`))));
    });
    req.on("error", fail);
    req.write(head);
    pipeline(createReadStream(path, { highWaterMark: MiB }), req, { end: false })
      .then(() => req.end(tail))
      .catch(fail);
  });
}

async function tus(url: string, path: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    const upload = new Upload(createReadStream(path), {
      endpoint: `${url}/files`,
      chunkSize: 64 * MiB,
      retryDelays: [],
      metadata: { filename: "bench.mp4" },
      headers: { authorization: token },
      onSuccess: () => done(),
      onError: fail,
    });
    upload.start();
  });
}

/**
 * Uploads all but the last byte with raw tus requests to one server, then times the final
 * one-byte PATCH on a second, warmed-up server process on the same data: the finish.
 */
async function finishMs(path: string, size: number): Promise<number> {
  const headers = { "tus-resumable": "1.0.0", authorization: token };
  const first = await startExample();
  const created = await fetch(`${first.url}/files`, { method: "POST", headers: { ...headers, "upload-length": String(size), "upload-metadata": `filename ${Buffer.from("finish.mp4").toString("base64")}` } });
  const uploadPath = created.headers.get("location") as string;
  const patch = (url: string, start: number, end: number) =>
    new Promise<void>((done, fail) => {
      const req = request(`${url}${uploadPath}`, { method: "PATCH", headers: { ...headers, "upload-offset": String(start), "content-type": "application/offset+octet-stream", "content-length": String(end - start) } }, (response) => {
        response.resume();
        response.on("end", () => (response.statusCode === 204 || response.statusCode === 200 ? done() : fail(new Error(`PATCH answered ${response.statusCode}`))));
      });
      req.on("error", fail);
      pipeline(createReadStream(path, { start, end: end - 1, highWaterMark: MiB }), req).catch(fail);
    });
  await patch(first.url, 0, size - 1);
  await stopExample(first, true);
  const second = await startExample(first.root);
  try {
    // The finish path warmed up with whole small uploads of other contents.
    for (let warm = 0; warm < 5; warm++) {
      await freshen(small);
      await tus(second.url, small);
    }
    const started = performance.now();
    await patch(second.url, size - 1, size);
    return performance.now() - started;
  } finally {
    await stopExample(second);
  }
}

const big = join(work, "big.mp4");
const small = join(work, "small.mp4");
const bigSize = await writeMp4(big, GiB);
const smallSize = await writeMp4(small, MiB);

const rates = { multipart: [] as number[], tus: [] as number[] };
const timed = async (run: (url: string) => Promise<void>, warm: (url: string) => Promise<void>) => {
  await freshen(big);
  const example = await startExample();
  try {
    // The server process warmed up on its route first (a small upload of other content), as a
    // running service is: the first finish of a fresh process also loads the modules it needs
    // (detection's, the client's), which is start-up cost, not throughput.
    await freshen(small);
    await warm(example.url);
    const started = performance.now();
    await run(example.url);
    return bigSize / MiB / ((performance.now() - started) / 1000);
  } finally {
    await stopExample(example);
  }
};
// Warm-up of both paths (page cache, JIT), then the counted rounds, interleaved.
const viaMultipart = [(url: string) => multipart(url, big, bigSize), (url: string) => multipart(url, small, smallSize)] as const;
const viaTus = [(url: string) => tus(url, big), (url: string) => tus(url, small)] as const;
await timed(...viaMultipart);
await timed(...viaTus);
for (let round = 0; round < ROUNDS; round++) {
  rates.multipart.push(await timed(...viaMultipart));
  rates.tus.push(await timed(...viaTus));
}

const finishes = { big: [] as number[], small: [] as number[] };
for (let round = 0; round < FINISH_ROUNDS; round++) {
  await freshen(big);
  finishes.big.push(await finishMs(big, bigSize));
  await freshen(small);
  finishes.small.push(await finishMs(small, smallSize));
}
await rm(work, { recursive: true, force: true });

const [m, t] = [median(rates.multipart), median(rates.tus)];
const [fb, fs] = [median(finishes.big), median(finishes.small)];
console.log(`machine: ${machine()}`);
console.log(`1 GiB through the example, a fresh server per run, ${ROUNDS} rounds interleaved, medians:`);
console.log(`  multipart POST /detect              ${m.toFixed(0).padStart(6)} MiB/s`);
console.log(`  tus /files, tus-js-client, 64 MiB   ${t.toFixed(0).padStart(6)} MiB/s`);
console.log(`tus / multipart: ${(t / m).toFixed(2)}x the throughput (goal >= 0.8x: ${t / m >= 0.8 ? "met" : "MISSED"})`);
console.log(`finish step (final 1-byte PATCH: ID, link, record), medians of ${FINISH_ROUNDS}:`);
console.log(`  1 GiB upload ${fb.toFixed(1).padStart(7)} ms`);
console.log(`  1 MiB upload ${fs.toFixed(1).padStart(7)} ms`);
console.log(`1 GiB / 1 MiB: ${(fb / fs).toFixed(2)}x (goal <= 1.5x: ${fb / fs <= 1.5 ? "met" : "MISSED"})`);
