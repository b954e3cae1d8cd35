// npm run bench:e2e — the benchmark users would run: uploads through HTTP on loopback, in one run,
// against what they run today. Each run starts a fresh server process (bench/e2e-server.ts),
// warms it up, resets its peak RSS, and sends one workload; variants are interleaved, their order
// shuffled each round; medians of the rounds (5, and 11 for the small uploads). Workloads: one
// 1 GiB upload, 16 concurrent 64 MiB uploads, 500 x 200 KB at concurrency 16. Every upload is
// new content (no duplicate shortcut). Per run: throughput, request latency p50/p99, server CPU
// time, server peak RSS.
// Where users run: files on the disk (the OS temp directory; E2E_DIR=/dev/shm picks memory), and
// the annotations calls to the SQLite dev annotations server (a process of its own); a variant
// named `<variant>@stub` calls the in-memory stub service instead, to show what the service
// costs. /detect and the hand-written flow run the same stand-in detector (examples/express/
// detector.ts, which reads the stored file), so the detector's work is the same on both sides.
// detect-metrics and detect-metrics-off: /detect with the example's telemetry on, and through the
// same start with OTEL_SDK_DISABLED=true: what metrics cost (goal: at most 3%).
//   E2E_ROUNDS (5), E2E_ONLY (a comma list of workloads: big, many, small), E2E_VARIANTS (a
//   comma list of variants), E2E_DIR
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, statfsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { SignJWT } from "jose";
import { samplePng } from "../examples/sample-media.ts";
import { freshen, machine, median, writeMp4 } from "./lib.ts";

const MiB = 2 ** 20;
const ROUNDS = Number(process.env.E2E_ROUNDS ?? 5);
const ONLY = new Set((process.env.E2E_ONLY ?? "big,many,small").split(","));
/** The variants each workload runs (bench/e2e-server.ts says what each is); `@stub` calls the stub service. */
const WORKLOAD_VARIANTS = {
  big: ["multer", "busboy", "store", "detect"],
  many: ["multer", "busboy", "store", "detect"],
  small: ["multer-fetch", "detect", "multer-fetch-power", "detect-power", "multer-fetch@stub", "detect@stub", "detect-metrics", "detect-metrics-off"],
} as const;
type Variant = (typeof WORKLOAD_VARIANTS)[keyof typeof WORKLOAD_VARIANTS][number];
const chosen = process.env.E2E_VARIANTS?.split(",");
const variantsOf = (workload: keyof typeof WORKLOAD_VARIANTS): Variant[] => WORKLOAD_VARIANTS[workload].filter((v) => !chosen || chosen.includes(v));
const secret = "bench-e2e-secret-0123456789abcdef";
const token = `Bearer ${await new SignJWT({ sub: "bench" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(secret))}`;
const base = process.env.E2E_DIR ?? tmpdir();
const work = await mkdtemp(join(base, "bench-e2e-"));
const TICKS = 100; // clock ticks a second in /proc/<pid>/stat
/** The file system's name, from its magic number (statfs). */
const fileSystem = ({ 0xef53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x794c7630: "overlayfs" } as Record<number, string>)[statfsSync(base).type] ?? `type 0x${statfsSync(base).type.toString(16)}`;

/** An annotations service in a process of its own; resolves to its URL and its process. */
async function startAnnotations(script: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
  const url = ((await once(child.stdout!, "data")) as [Buffer])[0].toString().trim();
  return { url, child };
}
const annotationsScripts = { dev: "./dev-annotations-server.ts", stub: "./annotations-server.ts" } as const;


const boundary = "----media-intake-e2e";
const partHead = (name: string, type: string) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: ${type}\r\n\r\n`);
const partTail = Buffer.from(`\r\n--${boundary}--\r\n`);
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** One multipart POST of a file on disk or bytes in memory; resolves to its latency in ms. */
function post(url: string, name: string, type: string, body: { path: string; size: number } | Buffer): Promise<number> {
  const head = partHead(name, type);
  const size = Buffer.isBuffer(body) ? body.length : body.size;
  const started = performance.now();
  return new Promise<number>((resolve, reject) => {
    const req = request(`${url}/upload`, { method: "POST", agent, headers: { authorization: token, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": head.length + size + partTail.length } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => (response.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${response.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
    });
    req.on("error", reject);
    req.write(head);
    if (Buffer.isBuffer(body)) req.end(Buffer.concat([body, partTail]));
    else
      pipeline(createReadStream(body.path, { highWaterMark: MiB }), req, { end: false })
        .then(() => req.end(partTail))
        .catch(reject);
  });
}

/** CPU seconds (user + system) of a process so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
}

/**
 * A run's server and its own annotations service, both fresh: a run never meets the database
 * (and the SQLite checkpoints) another run grew.
 */
async function startServer(variant: Variant): Promise<{ url: string; child: ChildProcess; dir: string; annotations: ChildProcess }> {
  const [kind, service] = variant.split("@") as [string, "stub" | undefined];
  const dir = await mkdtemp(join(work, `${kind}-`));
  const { url: annotationsUrl, child: annotations } = await startAnnotations(annotationsScripts[service ?? "dev"]);
  const child = spawn(process.execPath, [new URL("./e2e-server.ts", import.meta.url).pathname, kind, JSON.stringify({ dir, annotationsUrl, secret })], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => line.startsWith("LISTENING ") && resolve(line.slice(10)));
    child.once("exit", (code) => reject(new Error(`${variant} server exited (${code})`)));
  });
  return { url, child, dir, annotations };
}

type Workload = { name: keyof typeof WORKLOAD_VARIANTS; label: string; unit: "MB/s" | "uploads/s"; run: (url: string) => Promise<{ latencies: number[]; bytes: number; count: number }> };

const big = join(work, "big.mp4");
const many = Array.from({ length: 16 }, (_, i) => join(work, `many-${i}.mp4`));
let smallSeed = 0;
const workloads: Workload[] = [
  {
    name: "big",
    label: "one 1 GiB upload",
    unit: "MB/s",
    async run(url) {
      await freshen(big);
      const latency = await post(url, "big.mp4", "video/mp4", { path: big, size: 1024 * MiB });
      return { latencies: [latency], bytes: 1024 * MiB, count: 1 };
    },
  },
  {
    name: "many",
    label: "16 concurrent 64 MiB uploads",
    unit: "MB/s",
    async run(url) {
      for (const path of many) await freshen(path);
      const latencies = await Promise.all(many.map((path, i) => post(url, `clip-${i}.mp4`, "video/mp4", { path, size: 64 * MiB })));
      return { latencies, bytes: 16 * 64 * MiB, count: 16 };
    },
  },
  {
    name: "small",
    label: "500 x 200 KB at concurrency 16",
    unit: "uploads/s",
    async run(url) {
      const base = samplePng(260, 260, 1);
      // New content each: a counter after IEND (still a PNG to every check).
      const bodies = Array.from({ length: 500 }, () => Buffer.concat([base, Buffer.from(`${++smallSeed}`.padStart(12, "0"))]));
      const latencies: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < bodies.length) {
            const body = bodies[next++] as Buffer;
            latencies.push(await post(url, "photo.png", "image/png", body));
          }
        }),
      );
      return { latencies, bytes: bodies.reduce((sum, b) => sum + b.length, 0), count: bodies.length };
    },
  },
];

async function measure(workload: Workload, variant: Variant) {
  const server = await startServer(variant);
  try {
    const pid = server.child.pid as number;
    // Warm-up: a few uploads of each size the workload sends, then a clean slate for the peak.
    for (let i = 0; i < 20; i++) await post(server.url, "warm.png", "image/png", Buffer.concat([samplePng(260, 260, 2), Buffer.from(`warm-${++smallSeed}`)]));
    if (workload.name !== "small") {
      await freshen(many[0] as string);
      await post(server.url, "warm.mp4", "video/mp4", { path: many[0] as string, size: 64 * MiB });
    }
    await writeFile(`/proc/${pid}/clear_refs`, "5").catch(() => {});
    const cpuBefore = await cpuSeconds(pid);
    const started = performance.now();
    const result = await workload.run(server.url);
    const seconds = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    const rss = await peakRssMiB(pid);
    const sorted = [...result.latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return { rate: workload.unit === "MB/s" ? result.bytes / 1e6 / seconds : result.count / seconds, p50: at(0.5), p99: at(0.99), cpu, rss };
  } finally {
    const annotationsExited = once(server.annotations, "exit");
    server.annotations.stdin!.end();
    await annotationsExited;
    const exited = once(server.child, "exit");
    server.child.kill("SIGTERM");
    await exited;
    await rm(server.dir, { recursive: true, force: true });
  }
}

// The large files only for the workloads that send them (the 64 MiB ones warm up both).
if (ONLY.has("big")) await writeMp4(big, 1024 * MiB);
if (ONLY.has("big") || ONLY.has("many")) for (const path of many) await writeMp4(path, 64 * MiB);

console.log(`machine: ${machine()}`);
console.log(`files in ${base} (${fileSystem}); annotations calls to the SQLite dev annotations server (@stub: the in-memory stub)`);
console.log(`a fresh server per run, warmed up; ${ROUNDS} rounds (small uploads: ${ROUNDS * 2 + 1}), variants shuffled each round; medians\n`);
const results: Record<string, Record<string, { rate: number; p50: number; p99: number; cpu: number; rss: number }>> = {};
for (const workload of workloads.filter((w) => ONLY.has(w.name))) {
  const VARIANTS = variantsOf(workload.name);
  const samples = Object.fromEntries(VARIANTS.map((v) => [v, [] as Array<Awaited<ReturnType<typeof measure>>>]));
  // Small uploads take two seconds a run, and swing most: more rounds steady their medians.
  const rounds = workload.name === "small" ? ROUNDS * 2 + 1 : ROUNDS;
  for (let round = 0; round < rounds; round++) {
    const order = [...VARIANTS].sort(() => Math.random() - 0.5);
    for (const variant of order) samples[variant]?.push(await measure(workload, variant));
  }
  const pick = (variant: Variant, key: "rate" | "p50" | "p99" | "cpu" | "rss") => median((samples[variant] ?? []).map((s) => s[key]));
  results[workload.name] = Object.fromEntries(VARIANTS.map((v) => [v, { rate: pick(v, "rate"), p50: pick(v, "p50"), p99: pick(v, "p99"), cpu: pick(v, "cpu"), rss: pick(v, "rss") }]));
  console.log(`${workload.label}:`);
  console.log(`  ${"variant".padEnd(20)} ${workload.unit.padStart(10)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"CPU s".padStart(7)} ${"peak RSS MiB".padStart(13)}`);
  for (const v of VARIANTS) {
    const r = results[workload.name]![v]!;
    console.log(`  ${v.padEnd(20)} ${r.rate.toFixed(0).padStart(10)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(9)} ${r.cpu.toFixed(2).padStart(7)} ${r.rss.toFixed(0).padStart(13)}`);
  }
  console.log("");
}

const goals: Array<[string, number | undefined, string, (x: number) => boolean]> = [];
const ratio = (w: string, a: Variant, b: Variant, key: "rate" | "rss" = "rate") => (results[w]?.[a] && results[w]?.[b] ? results[w]![a]![key] / results[w]![b]![key] : undefined);
goals.push(["/detect / multer, 1 GiB", ratio("big", "detect", "multer"), ">= 0.95x", (x) => x >= 0.95]);
goals.push(["storeMedia / multer, 1 GiB", ratio("big", "store", "multer"), ">= 1.0x", (x) => x >= 1.0]);
goals.push(["storeMedia / multer, 16 x 64 MiB", ratio("many", "store", "multer"), ">= 1.0x", (x) => x >= 1.0]);
goals.push(["peak RSS /detect / multer, 16 x 64 MiB", ratio("many", "detect", "multer", "rss"), "<= 1.25x", (x) => x <= 1.25]);
goals.push(["/detect / multer + fetch, 500 x 200 KB", ratio("small", "detect", "multer-fetch"), ">= 0.9x", (x) => x >= 0.9]);
goals.push(["/detect power / multer + fetch + fsync", ratio("small", "detect-power", "multer-fetch-power"), ">= 0.8x", (x) => x >= 0.8]);
goals.push(["/detect metrics on / OTEL_SDK_DISABLED", ratio("small", "detect-metrics", "detect-metrics-off"), ">= 0.97x", (x) => x >= 0.97]);
console.log("goals (throughput ratios; RSS the other way):");
for (const [label, value, goal, met] of goals) {
  if (value === undefined) continue;
  console.log(`  ${label.padEnd(42)} ${value.toFixed(2).padStart(6)}x   goal ${goal.padEnd(9)} ${met(value) ? "met" : "MISSED"}`);
}
const stubRatio = ratio("small", "detect@stub", "multer-fetch@stub");
if (stubRatio !== undefined) console.log(`  ${"/detect / multer + fetch, stub service".padEnd(42)} ${stubRatio.toFixed(2).padStart(6)}x   (no goal: the service's own cost left out)`);

agent.destroy();

await rm(work, { recursive: true, force: true });
