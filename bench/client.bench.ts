// npm run bench:client — the annotations client against raw fetch, same loopback server, one run.
import { spawn } from "node:child_process";
import { once } from "node:events";
import ky from "ky";
import { createAnnotationsClient, MediaStatus, MediaType } from "../src/index.ts";
import { machine, median, Report } from "./lib.ts";

const MEDIA = 1000;
const CONCURRENCY = 32;
const TOKEN = "bench-token";

// The server runs in its own process: on 2 cores, sharing the event loop would charge the
// server's work to whichever client happens to be measured.
const child = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const [firstLine] = (await once(child.stdout, "data")) as [Buffer];
const service = { url: firstLine.toString().trim(), close: async () => { child.stdin.end(); await once(child, "exit"); } };
const client = createAnnotationsClient({ baseUrl: service.url, token: TOKEN });
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", accept: "application/json" };

const rawFetch = {
  async create(id: string) {
    const body = { Id: id, Name: "clip.mp4", Path: `/data/videos/${id}.mp4`, MediaType: 1, MediaStatus: 1, UserId: "u" };
    const response = await fetch(`${service.url}/api/media`, { method: "POST", headers, body: JSON.stringify(body) });
    if (response.status !== 201) throw new Error(`create: ${response.status}`);
    return JSON.parse(await response.text()) as unknown;
  },
  async status(id: string, status: number) {
    const response = await fetch(`${service.url}/api/media/${id}/status`, { method: "PUT", headers, body: JSON.stringify({ MediaStatus: status }) });
    if (response.status !== 204) throw new Error(`status: ${response.status}`);
    await response.text();
  },
};
// ky alone with the client's retry and timeout policy: what the client costs beyond ky itself.
const bareKy = ky.create({
  prefix: service.url,
  headers,
  timeout: 10_000,
  totalTimeout: 60_000,
  retry: { limit: 3, methods: ["get", "put", "post"], retryOnTimeout: true, jitter: true },
});
const viaKy = {
  async create(id: string) {
    const json = { Id: id, Name: "clip.mp4", Path: `/data/videos/${id}.mp4`, MediaType: 1, MediaStatus: 1, UserId: "u" };
    return JSON.parse(await bareKy.post("api/media", { json }).text()) as unknown;
  },
  async status(id: string, status: number) {
    await bareKy.put(`api/media/${id}/status`, { json: { MediaStatus: status } }).text();
  },
};
const viaClient = {
  create: (id: string) => client.media.create({ id, name: "clip.mp4", path: `/data/videos/${id}.mp4`, mediaType: MediaType.Video, userId: "u" }),
  status: (id: string, status: MediaStatus) => client.media.updateStatus(id, status),
};

/** 1000 × (create, AIProcessing, AIProcessed) with 32 in flight; per-call latencies and wall time. */
async function run(api: typeof rawFetch | typeof viaKy | typeof viaClient, round: number) {
  const latencies: number[] = [];
  let next = 0;
  const timed = async (call: () => Promise<unknown>) => {
    const started = performance.now();
    await call();
    latencies.push(performance.now() - started);
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let index = next++; index < MEDIA; index = next++) {
        const id = ((round * 1_000_000 + index) >>> 0).toString(16).padStart(16, "0");
        await timed(() => api.create(id));
        await timed(() => api.status(id, MediaStatus.AIProcessing));
        await timed(() => api.status(id, MediaStatus.AIProcessed));
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

try {
  console.log(`media-intake bench:client on ${machine()}\n`);
  const latency = { raw: [] as number[], ky: [] as number[], client: [] as number[] };
  const rps = { raw: [] as number[], ky: [] as number[], client: [] as number[] };
  for (let round = 0; round < 6; round++) {
    const results = { raw: await run(rawFetch, round * 3), ky: await run(viaKy, round * 3 + 1), client: await run(viaClient, round * 3 + 2) };
    if (round === 0) continue; // warm-up
    for (const key of ["raw", "ky", "client"] as const) {
      latency[key].push(median(results[key].latencies));
      rps[key].push((MEDIA * 3) / results[key].seconds);
    }
  }
  for (const [key, label] of [["raw", "raw fetch"], ["ky", "bare ky, same policy"], ["client", "media-intake client"]] as const) {
    console.log(`${label.padEnd(22)} ${median(rps[key]).toFixed(0).padStart(6)} requests/s, median ${median(latency[key]).toFixed(2)} ms a call`);
  }
  const overhead = median(latency.client) / median(latency.raw) - 1;
  const overKy = median(latency.client) / median(latency.ky) - 1;
  const report = new Report();
  report.line("client median overhead per call over raw fetch", `${(overhead * 100).toFixed(1)}%`, "<= 15%", overhead <= 0.15);
  console.log(`  (over bare ky with the same policy: ${(overKy * 100).toFixed(1)}%)`);
  console.log(report.failed ? `\n${report.failed} goal(s) missed` : "\nall goals met");
} finally {
  await service.close();
}
