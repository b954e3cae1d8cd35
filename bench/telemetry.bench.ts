// npm run bench:telemetry — what the library's OpenTelemetry instrumentation costs per upload, in
// one run: the same loop of small intakes in three processes, (a) @opentelemetry/api not
// installed (its resolution fails, as for a user without it), (b) the API installed and no SDK
// registered (the API's no-ops), (c) an SDK recording every span and metric into memory. Rounds
// are interleaved across the three, so drift hits them alike; the ratios are b/a and c/a.
// The annotations stub runs in its own process on loopback.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { machine, median } from "./lib.ts";

const UPLOADS = Number(process.env.TELEMETRY_UPLOADS ?? 500);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.TELEMETRY_ROUNDS ?? 7);

const stub = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const [firstLine] = (await once(stub.stdout, "data")) as [Buffer];
const annotationsUrl = firstLine.toString().trim();

const modes = [
  { mode: "absent", name: "(a) @opentelemetry/api absent", args: ["--import", new URL("../test/fixtures/otel-api-absent.mjs", import.meta.url).pathname] },
  { mode: "api", name: "(b) API, no SDK", args: [] },
  { mode: "sdk", name: "(c) SDK recording into memory", args: [] },
] as const;

/** A child of one mode: `round()` runs a round there and resolves to what it printed. */
async function startChild(mode: string, args: readonly string[]) {
  const child = spawn(process.execPath, [...args, new URL("./telemetry-child.ts", import.meta.url).pathname, mode, annotationsUrl, String(UPLOADS), String(CONCURRENCY)], { stdio: ["pipe", "pipe", "inherit"] });
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

const children = await Promise.all(modes.map(({ mode, args }) => startChild(mode, args)));
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
