// temp: profile one variant under the small workload
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";
import { SignJWT } from "jose";
import { samplePng } from "../examples/sample-media.ts";
const variant = process.argv[2] ?? "detect";
const secret = "bench-e2e-secret-0123456789abcdef";
const token = `Bearer ${await new SignJWT({ sub: "bench" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(secret))}`;
const stub = spawn(process.execPath, [new URL("./annotations-server.ts", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
const annotationsUrl = ((await once(stub.stdout, "data")) as [Buffer])[0].toString().trim();
const dir = await mkdtemp(process.env.DIR ?? "/dev/shm/prof-");
const child = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : []), new URL("./e2e-server.ts", import.meta.url).pathname, variant, JSON.stringify({ dir, annotationsUrl, secret })], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise<string>((r) => createInterface({ input: child.stdout! }).on("line", (l) => l.startsWith("LISTENING ") && r(l.slice(10))));
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const boundary = "----x";
let seed = 0;
const base = samplePng(260, 260, 1);
function post(): Promise<void> {
  const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\nContent-Type: image/png\r\n\r\n`), base, Buffer.from(`${++seed}-${Math.random()}`), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return new Promise((res, rej) => { const req = request(`${url}/upload`, { method: "POST", agent, headers: { authorization: token, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": body.length } }, (r) => { r.resume(); r.on("end", () => r.statusCode === 200 ? res() : rej(new Error(String(r.statusCode)))); }); req.on("error", rej); req.end(body); });
}
const N = Number(process.env.N ?? 1000);
for (let i = 0; i < 50; i++) await post();
const t = performance.now(); let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => { while (next++ < N) await post(); }));
console.log(variant, (N / ((performance.now() - t) / 1000)).toFixed(0), "uploads/s");
child.kill("SIGTERM"); await once(child, "exit"); stub.stdin.end(); agent.destroy();
