// npm run demo:cluster — the multi-host mode on one machine: redis-server from PATH on a free
// port, a dev annotations server, two web processes (npm run example:express with REDIS_URL) and
// two detection workers (npm run example:worker) on one shared data directory. It uploads 40
// files with duplicates through both web processes, kills a worker with SIGKILL mid-job, sends
// a resumable (tus) upload whose chunks alternate between the web processes, and prints what
// became of each upload, then checks the outcome: one file and one record per
// content, every record AIProcessed (Error for the corrupt files), every duplicate answered
// alike, nothing left in the queue's active set. Exits 1 if a check fails.
//   --json   prints the report as one JSON object instead of the table
//   --keep   keeps the temp directory (data, logs) instead of removing it
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { Queue } from "bullmq";
import { SignJWT } from "jose";
import { Upload } from "tus-js-client";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, MediaStatus, mediaStatusName } from "../src/index.ts";
import { createRedisJournal } from "../src/journal/redis.ts";
import { missingRedisMessage, startLocalRedis } from "./local-redis.ts";
import { sampleMp4, samplePng } from "./sample-media.ts";

const detectionCount = (n: number) => `${n} detection${n === 1 ? "" : "s"}`;
const json = process.argv.includes("--json");
const keep = process.argv.includes("--keep");
const say = (line: string) => {
  if (!json) console.log(line);
};

const root = await mkdtemp(join(tmpdir(), "media-intake-cluster-"));
const logs = join(root, "logs");
await mkdir(logs);
const children: ChildProcess[] = [];
const directories = { videosDir: join(root, "data", "videos"), imagesDir: join(root, "data", "images") };
const secret = randomBytes(32).toString("hex");

/** Starts a Node process of the example, its log in logs/<name>.log; resolves with it and a line waiter. */
async function startProcess(name: string, script: string, env: Record<string, string>, ready: RegExp) {
  const child = spawn(process.execPath, [join(import.meta.dirname, script)], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const log = createWriteStream(join(logs, `${name}.log`));
  child.stderr?.pipe(log);
  const watchers: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    log.write(`${line}\n`);
    for (const watch of watchers) watch(line);
  });
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    watchers.push((line) => {
      const found = line.match(ready);
      if (found) resolve(found);
    });
    child.once("exit", (code) => reject(new Error(`${name} exited (${code}) before it was ready: see ${join(logs, `${name}.log`)}`)));
  });
  return { name, child, match, onLine: (watch: (line: string) => void) => watchers.push(watch) };
}

let redis: Awaited<ReturnType<typeof startLocalRedis>> | undefined;
let annotations: Awaited<ReturnType<typeof startDevAnnotationsServer>> | undefined;
let failed = false;
try {
  await mkdir(join(root, "redis"));
  redis = await startLocalRedis(join(root, "redis"), { onStart: (child) => children.push(child) });
  annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), jwtSecret: secret });
  const annotationsUrl = annotations.url;
  const shared = {
    REDIS_URL: redis.url,
    ANNOTATIONS_URL: annotationsUrl,
    JWT_SECRET: secret,
    VIDEOS_DIR: directories.videosDir,
    IMAGES_DIR: directories.imagesDir,
    LOG_LEVEL: "info",
    // A dead process's journal entries are settled by another once three beats are missed.
    JOURNAL_HEARTBEAT_MS: "500",
  };
  // The worker's lock is short here so that the killed worker's job runs again within seconds.
  const workerEnv = { ...shared, WORKER_CONCURRENCY: "2", DETECTOR_DELAY_MS: "300", WORKER_LOCK_MS: "2000", STALLED_INTERVAL_MS: "1000" };
  const webs = await Promise.all(
    [1, 2].map((n) => startProcess(`web-${n}`, "express/server.ts", { ...shared, HOST: "127.0.0.1", PORT: "0", RESULT_WAIT_MS: "3000", RECOVERY_INTERVAL_MS: "1000" }, /"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)),
  );
  const workers = await Promise.all([1, 2].map((n) => startProcess(`worker-${n}`, "express/worker.ts", workerEnv, /"msg":"worker ready"/)));
  say(`redis ${redis.url}, annotations ${annotations.url}, web ${webs.map((w) => w.match[1]).join(" and ")}, 2 workers; data and logs in ${root}\n`);

  // A worker killed with SIGKILL on its second job, mid-way through it (in its GPU time).
  let killed: { worker: string; id: string } | undefined;
  const doomed = workers[1]!;
  let jobsSeen = 0;
  doomed.onLine((line) => {
    if (killed || !line.includes('"msg":"detecting"')) return;
    jobsSeen += 1;
    if (jobsSeen < 2) return;
    killed = { worker: doomed.name, id: (JSON.parse(line) as { id: string }).id };
    doomed.child.kill("SIGKILL");
  });

  // 24 contents (18 images, 4 videos, 2 corrupt images), 40 uploads: 16 are duplicates under other names.
  const contents: Array<{ name: string; bytes: Buffer; corrupt: boolean }> = [];
  for (let i = 0; i < 18; i++) contents.push({ name: `photo-${i}.png`, bytes: samplePng(32 + i, 24, i), corrupt: false });
  for (let i = 0; i < 4; i++) contents.push({ name: `clip-${i}.mp4`, bytes: sampleMp4(256 * 1024, i), corrupt: false });
  for (let i = 0; i < 2; i++) contents.push({ name: `broken-${i}.png`, bytes: samplePng(40, 30, 50 + i).subarray(0, 200), corrupt: true });
  const uploads = contents.map((content) => ({ ...content, file: content.name }));
  for (let i = 0; uploads.length < 40; i += 3) {
    const content = contents[i % contents.length]!;
    uploads.push({ ...content, file: `copy-${uploads.length}-${content.name}` });
  }
  // A fixed shuffle, so that duplicates arrive close together and on both web processes.
  const order = (upload: (typeof uploads)[number]) => (contents.findIndex((c) => c.bytes === upload.bytes) * 7) % 11;
  uploads.sort((a, b) => order(a) - order(b));

  const token = await new SignJWT({ sub: "field-team" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("15m").sign(new TextEncoder().encode(secret));
  const auth = { authorization: `Bearer ${token}` };
  type Answer = { http: number; web: string; id: string; outcome: string; polled: boolean };
  const answers: Answer[] = new Array(uploads.length);
  let next = 0;
  const uploadOne = async (index: number) => {
    const upload = uploads[index]!;
    const web = webs[index % 2]!;
    const form = new FormData();
    form.append("file", new Blob([upload.bytes as Uint8Array<ArrayBuffer>]), upload.file);
    const response = await fetch(`${web.match[1]}/detect`, { method: "POST", body: form, headers: auth });
    type Body = { media?: { id: string }; detections?: unknown; detection?: { poll: string }; error?: { code: string } };
    let body = (await response.json()) as Body;
    const http = response.status;
    let polled = false;
    // 202: the result was not ready within RESULT_WAIT_MS; poll where the answer says.
    while (response.status === 202 && body.detection) {
      polled = true;
      const poll = (await (await fetch(`${web.match[1]}${body.detection.poll}`, { headers: auth })).json()) as {
        detection: { state: string; detections?: unknown; error?: { code: string } };
      };
      if (poll.detection.state === "completed") body = { ...body, detections: poll.detection.detections };
      else if (poll.detection.state === "failed") body = { ...body, error: { code: poll.detection.error?.code ?? "DETECTION_FAILED" } };
      else {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      break;
    }
    const outcome = body.error ? body.error.code : JSON.stringify(body.detections);
    answers[index] = { http, web: web.name, id: body.media?.id ?? (await computeMediaId(upload.bytes)), outcome, polled };
  };
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < uploads.length) await uploadOne(next++);
    }),
  );

  // A resumable upload (tus) whose chunks go to both web processes in turn, as a load balancer
  // without affinity sends them: the Redis tus locker makes them take turns.
  const video = { name: "field-video.mp4", bytes: sampleMp4(6 * 2 ** 20, 99), corrupt: false };
  contents.push(video);
  uploads.push({ ...video, file: "field-video.mp4 (tus)" });
  let turn = 0;
  const finished = await new Promise<{ media: { id: string }; detection: { poll: string } }>((resolve, reject) => {
    const upload = new Upload(video.bytes, {
      endpoint: `${webs[0]!.match[1]}/files`,
      chunkSize: 2 ** 20,
      retryDelays: [0, 200, 1_000],
      metadata: { filename: video.name },
      headers: auth,
      onBeforeRequest: (req) => {
        if (req.getMethod() !== "PATCH") return;
        const target = webs[turn++ % 2]!.match[1];
        (req as unknown as { _url: string })._url = `${target}${new URL(req.getURL()).pathname}`;
      },
      onSuccess: ({ lastResponse }) => resolve(JSON.parse(lastResponse.getBody() as string)),
      onError: reject,
    });
    upload.start();
  });
  let outcome: string | undefined;
  while (!outcome) {
    const poll = (await (await fetch(`${webs[1]!.match[1]}${finished.detection.poll}`, { headers: auth })).json()) as { detection: { state: string; detections?: unknown } };
    if (poll.detection.state === "completed") outcome = JSON.stringify(poll.detection.detections);
    else if (poll.detection.state === "failed") outcome = "DETECTION_FAILED";
    else await new Promise((resolve) => setTimeout(resolve, 200));
  }
  answers.push({ http: 200, web: `web-1+web-2 (${turn} PATCHes)`, id: finished.media.id, outcome, polled: true });

  // What became of each content.
  const client = createAnnotationsClient({ baseUrl: annotationsUrl, token });
  const ids = [...new Set(answers.map((a) => a.id))];
  const records = new Map(await Promise.all(ids.map(async (id) => [id, await client.media.get(id).catch(() => undefined)] as const)));
  const histories = new Map(
    await Promise.all(
      ids.map(async (id) => {
        const history = (await (await fetch(`${annotationsUrl}/api/media/${id}/history`, { headers: auth })).json()) as Array<{ mediaStatus: number }>;
        return [id, history.map((h) => mediaStatusName(h.mediaStatus)).join(" -> ")] as const;
      }),
    ),
  );
  const files = (await readdir(join(root, "data"), { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && !relative(join(root, "data"), join(e.parentPath, e.name)).split("/").some((p) => p.startsWith(".")));
  const queue = new Queue("media-detection", { connection: { url: redis.url } });
  const active = await queue.getActiveCount();
  await queue.close();
  // The killed worker's entries are settled by the web processes' recovery once its heartbeat lapses.
  const journal = createRedisJournal({ connection: redis.url, prefix: "media-intake:journal" });
  const settleStart = Date.now();
  let journaled = (await journal.list()).length;
  while (journaled > 0 && Date.now() - settleStart < 30_000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    journaled = (await journal.list()).length;
  }
  const settledInMs = Date.now() - settleStart;
  await journal.close();

  const rows = uploads.map((upload, index) => {
    const answer = answers[index]!;
    const record = records.get(answer.id);
    return {
      file: upload.file,
      web: answer.web,
      http: answer.http,
      polled: answer.polled,
      id: answer.id,
      answer: answer.outcome.startsWith("[") ? detectionCount((JSON.parse(answer.outcome) as unknown[]).length) : answer.outcome,
      status: record ? mediaStatusName(record.mediaStatus) : "no record",
      history: histories.get(answer.id) ?? "-",
      corrupt: upload.corrupt,
    };
  });
  const byContent = new Map<string, Answer[]>();
  for (const answer of answers) byContent.set(answer.id, [...(byContent.get(answer.id) ?? []), answer]);
  const checks = [
    { check: `one file per content (${contents.length} contents)`, ok: files.length === contents.length, detail: `${files.length} files` },
    { check: "one record per content", ok: ids.length === contents.length && [...records.values()].every(Boolean), detail: `${[...records.values()].filter(Boolean).length} records` },
    {
      check: "every record AIProcessed, Error for the corrupt files",
      ok: rows.every((row) => row.status === (row.corrupt ? "Error" : "AIProcessed")),
      detail: rows.filter((row) => row.status !== (row.corrupt ? "Error" : "AIProcessed")).map((row) => `${row.file}: ${row.status}`).join(", ") || "all",
    },
    {
      check: "every duplicate answered alike",
      ok: [...byContent.values()].every((group) => group.every((a) => a.outcome === group[0]!.outcome)),
      detail: `${[...byContent.values()].filter((g) => g.length > 1).length} contents uploaded more than once`,
    },
    { check: "a worker was killed mid-job, and its job ended right", ok: killed !== undefined && records.get(killed.id)?.mediaStatus !== MediaStatus.AIProcessing, detail: killed ? `${killed.worker} on ${killed.id}: ${histories.get(killed.id)}` : "no kill" },
    { check: "nothing left in the queue's active set", ok: active === 0, detail: `${active} active` },
    { check: "nothing left in the journal (no intake or run unsettled)", ok: journaled === 0, detail: journaled === 0 ? `empty ${(settledInMs / 1000).toFixed(1)} s after the last answer` : `${journaled} entries after 30 s` },
  ];
  failed = checks.some((c) => !c.ok);

  if (json) console.log(JSON.stringify({ uploads: rows, killed, checks }));
  else {
    const table = [["file", "via", "HTTP", "media ID", "answer", "record", "status history"], ...rows.map((r) => [r.file, r.web, `${r.http}${r.polled ? " (polled)" : ""}`, r.id, r.answer, r.status, r.history])];
    const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
    for (const row of table) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
    console.log("");
    for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.check}: ${c.detail}`);
  }
} catch (error) {
  failed = true;
  const message = (error as Error).message;
  console.error(message === missingRedisMessage ? `npm run demo:cluster needs Redis. ${message}` : `demo:cluster failed: ${message}`);
} finally {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  await annotations?.close();
  if (!keep) await rm(root, { recursive: true, force: true });
  else say(`kept ${root}`);
}
process.exitCode = failed ? 1 : 0;
