// npm run bench:telemetry — what the library's OpenTelemetry instrumentation costs per upload, in
// one run: the same loop of small intakes in three processes, (a) @opentelemetry/api not
// installed (a copy of the sources beside a node_modules without it, as a user without it has;
// not a module resolve hook, which slows the whole process by a third), (b) the API installed and no SDK
// registered (the API's no-ops), (c) an SDK recording every span and metric into memory. Rounds
// are interleaved across the three, so drift hits them alike; the ratios are b/a and c/a.
// The annotations stub runs in its own process on loopback.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { machine, median } from "./lib.ts";

const UPLOADS = Number(process.env.TELEMETRY_UPLOADS ?? 3000);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.TELEMETRY_ROUNDS ?? 7);

const stub = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const [firstLine] = (await once(stub.stdout, "data")) as [Buffer];
const annotationsUrl = firstLine.toString().trim();

/** A copy of what the child runs, beside a node_modules of links to every package but @opentelemetry's: the child there, as a user without the API. */
async function withoutApi(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "bench-telemetry-"));
  const repo = new URL("..", import.meta.url).pathname;
  for (const path of ["package.json", "src", "bench/telemetry-child.ts", "examples/sample-media.ts"]) await cp(join(repo, path), join(root, path), { recursive: true });
  await mkdir(join(root, "node_modules"));
  for (const name of await readdir(join(repo, "node_modules"))) {
    if (name !== "@opentelemetry") await symlink(join(repo, "node_modules", name), join(root, "node_modules", name));
  }
  return root;
}
const bare = await withoutApi();

const here = (path: string) => new URL(path, import.meta.url).pathname;
const modes = [
  { mode: "absent", name: "(a) @opentelemetry/api absent", script: join(bare, "bench/telemetry-child.ts") },
  { mode: "api", name: "(b) API, no SDK", script: here("./telemetry-child.ts") },
  { mode: "sdk", name: "(c) SDK recording into memory", script: here("./telemetry-child.ts") },
] as const;

/** A child of one mode: `round()` runs a round there and resolves to what it printed. */
async function startChild(mode: string, script: string) {
  const child = spawn(process.execPath, [script, mode, annotationsUrl, String(UPLOADS), String(CONCURRENCY)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`bench:telemetry: the ${mode} child exited`);
    return value as string;
  };
  if ((await next()) !== "READY") throw new Error(`bench:telemetry: the ${mode} child did not start`);
  return {
    async round(): Promise<{ rate: number; spans?: number; metrics?: number }> {
      child.stdin.write("round\n");
      return JSON.parse(await next());
    },
    async stop() {
      child.stdin.end();
      await once(child, "exit");
    },
  };
}

const children = await Promise.all(modes.map(({ mode, script }) => startChild(mode, script)));
for (const child of children) await child.round(); // warm-up
const rates = modes.map(() => [] as number[]);
let recorded: { spans?: number; metrics?: number } = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [i, child] of children.entries()) {
    const { rate, ...rest } = await child.round();
    rates[i]?.push(rate);
    if (modes[i]?.mode === "sdk") recorded = rest;
  }
}
const [absent, api, sdk] = rates.map((samples) => median(samples));
console.log(`machine: ${machine()}`);
console.log(`${UPLOADS} intakes of ~2 KB at concurrency ${CONCURRENCY}, ${ROUNDS} rounds interleaved across three processes, medians:`);
for (const [i, { name }] of modes.entries()) console.log(`  ${name.padEnd(34)} ${median(rates[i] ?? []).toFixed(0).padStart(6)} uploads/s`);
console.log(`  (the SDK side recorded ${recorded.spans ?? 0} spans in its last round, and ${recorded.metrics ?? 0} metrics)`);
console.log(`API, no SDK / API absent: ${((api ?? 0) / (absent ?? 1)).toFixed(2)}x the throughput`);
console.log(`SDK recording / API absent: ${((sdk ?? 0) / (absent ?? 1)).toFixed(2)}x the throughput`);
await Promise.all(children.map((child) => child.stop()));
stub.stdin.end();
await once(stub, "exit");
await rm(bare, { recursive: true, force: true });
