// node bench/profile-uploads.ts <variant> — small uploads (about 200 KB, new content each) at
// concurrency 16 into one server of bench:e2e (bench/e2e-server.ts), for profiling a variant
// alone: prints uploads/s and the server's RSS. PROF=1 writes the server's CPU profile to
// ./profiles (open it in Chrome DevTools); N (1000) uploads after 50 to warm up; DIR, the
// data directory's prefix (<OS temp directory>/profile-: the disk); ANNOTATIONS=stub calls the
// in-memory stub instead of the SQLite dev annotations server.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";
import { SignJWT } from "jose";
import { samplePng } from "../examples/sample-media.ts";

const variant = process.argv[2] ?? "detect";
const secret = "bench-e2e-secret-0123456789abcdef";
const token = `Bearer ${await new SignJWT({ sub: "bench" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(secret))}`;
const stub = spawn(process.execPath, [new URL(process.env.ANNOTATIONS === "stub" ? "./annotations-server.ts" : "./dev-annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const annotationsUrl = ((await once(stub.stdout, "data")) as [Buffer])[0].toString().trim();
const dir = await mkdtemp(process.env.DIR ?? join(tmpdir(), "profile-"));
const child = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=profiles"] : []), new URL("./e2e-server.ts", import.meta.url).pathname, variant, JSON.stringify({ dir, annotationsUrl, secret })], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).on("line", (line) => line.startsWith("LISTENING ") && resolve(line.slice(10))));
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const boundary = "----profile-uploads";
const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\nContent-Type: image/png\r\n\r\n`);
const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
const base = samplePng(260, 260, 1);
let seed = 0;

function post(): Promise<void> {
  // New content each time: a counter after the PNG's end.
  const body = Buffer.concat([head, base, Buffer.from(`${++seed}-${Math.random()}`), tail]);
  return new Promise((resolve, reject) => {
    const headers = { authorization: token, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": body.length };
    const req = request(`${url}/upload`, { method: "POST", agent, headers }, (response) => {
      response.resume();
      response.on("end", () => (response.statusCode === 200 ? resolve() : reject(new Error(`answered ${response.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const N = Number(process.env.N ?? 1000);
for (let i = 0; i < 50; i++) await post();
/** CPU ms (user + system) of the server so far. */
const cpuMs = async () => {
  const fields = (await readFile(`/proc/${child.pid}/stat`, "utf8")).replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const cpuBefore = await cpuMs();
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next++ < N) await post();
  }),
);
console.log(`${variant}: ${(N / ((performance.now() - started) / 1000)).toFixed(0)} uploads/s, server CPU ${(((await cpuMs()) - cpuBefore) / N).toFixed(2)} ms an upload`);
const status = await readFile(`/proc/${child.pid}/status`, "utf8");
console.log(`server RSS ${status.match(/VmRSS:\s+(\d+)/)?.[1]} kB, peak ${status.match(/VmHWM:\s+(\d+)/)?.[1]} kB`);
child.kill("SIGTERM");
await once(child, "exit");
stub.stdin.end();
agent.destroy();
await rm(dir, { recursive: true, force: true });
