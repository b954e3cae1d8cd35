// npm run bench:client — the annotations client against raw fetch, same loopback server, one run.
import { spawn } from "node:child_process";
import { once } from "node:events";
import ky from "ky";
import { createAnnotationsClient, MediaStatus, MediaType } from "../src/index.ts";
import { machine, median, Report } from "./lib.ts";

const MEDIA = 1000;
const CONCURRENCY = 32;

// The servers run in their own process: on 2 cores, sharing the event loop would charge the
// server's work to whichever client happens to be measured. Two of them: the fake service (a
// loopback stub, where the client's own cost shows in full) and the dev annotations server
// (SQLite, real work per call, as against a real service).
const servers = [
  { name: "the loopback stub", script: "./annotations-server.ts" },
  { name: "the dev annotations server (SQLite)", script: "./dev-annotations-server.ts" },
];
async function startService(script: string) {
  const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
  const [firstLine] = (await once(child.stdout, "data")) as [Buffer];
  return { url: firstLine.toString().trim(), close: async () => { child.stdin.end(); await once(child, "exit"); } };
}
// A well-formed unsigned JWT: the dev server decodes it (no secret), the stub takes any token.
const TOKEN_JWT = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"bench"}').toString("base64url")}.`;

function apis(serviceUrl: string) {
const service = { url: serviceUrl };
const client = createAnnotationsClient({ baseUrl: service.url, token: TOKEN_JWT });
const headers = { authorization: `Bearer ${TOKEN_JWT}`, "content-type": "application/json", accept: "application/json" };
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

return { rawFetch, viaKy, viaClient };
}

/** 1000 × (create, AIProcessing, AIProcessed) with 32 in flight; per-call latencies and wall time. */
type Api = ReturnType<typeof apis>["rawFetch"] | ReturnType<typeof apis>["viaKy"] | ReturnType<typeof apis>["viaClient"];
async function run(api: Api, round: number) {
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

console.log(`media-intake bench:client on ${machine()}`);
const report = new Report();
for (const [serverIndex, server] of servers.entries()) {
  const service = await startService(server.script);
  try {
    const { rawFetch, viaKy, viaClient } = apis(service.url);
    console.log(`\n${MEDIA} x (create, AIProcessing, AIProcessed) at concurrency ${CONCURRENCY} against ${server.name}:`);
    const latency = { raw: [] as number[], ky: [] as number[], client: [] as number[] };
    const rps = { raw: [] as number[], ky: [] as number[], client: [] as number[] };
    for (let round = 0; round < 6; round++) {
      const base = (serverIndex * 6 + round) * 3;
      const results = { raw: await run(rawFetch, base), ky: await run(viaKy, base + 1), client: await run(viaClient, base + 2) };
      if (round === 0) continue; // warm-up
      for (const key of ["raw", "ky", "client"] as const) {
        latency[key].push(median(results[key].latencies));
        rps[key].push((MEDIA * 3) / results[key].seconds);
      }
    }
    for (const [key, label] of [["raw", "raw fetch"], ["ky", "bare ky, same policy"], ["client", "media-intake client"]] as const) {
      console.log(`  ${label.padEnd(22)} ${median(rps[key]).toFixed(0).padStart(6)} requests/s, median ${median(latency[key]).toFixed(2)} ms a call`);
    }
    const overhead = median(latency.client) / median(latency.raw) - 1;
    const overKy = median(latency.client) / median(latency.ky) - 1;
    const dev = serverIndex === 1;
    if (dev) report.line("client median overhead per call over raw fetch (dev server)", `${(overhead * 100).toFixed(1)}%`, "<= 15%", overhead <= 0.15);
    else console.log(`  client median overhead per call over raw fetch: ${(overhead * 100).toFixed(1)}% (the stub: no goal, the client's cost in full)`);
    console.log(`  (over bare ky with the same policy: ${(overKy * 100).toFixed(1)}%)`);
  } finally {
    await service.close();
  }
}
console.log(report.failed ? `\n${report.failed} goal(s) missed` : "\nall goals met");
