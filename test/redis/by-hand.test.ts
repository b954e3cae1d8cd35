// docs/redis.md, "By hand", on a fresh clone without a build: the working tree's files as a clone
// has them (no dist/, no data/) with node_modules as `npm ci` leaves them, then the steps as
// written: `npm run dev-annotations`, and `npm run example:express` and `npm run example:worker`
// with REDIS_URL and ANNOTATIONS_URL. An upload comes back with the worker's detections.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFile, mkdir, realpath, symlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../examples/local-redis.ts";
import { samplePng } from "../../examples/sample-media.ts";
import { computeMediaId, MediaStatus } from "../../src/index.ts";
import { signToken } from "../helpers/fixture.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

const repo = resolve(import.meta.dirname, "../..");
const groups: ChildProcess[] = [];
afterEach(async () => {
  // Each `npm run` leads a process group of its own: npm and the node it execs go together.
  await Promise.all(
    groups.splice(0).map(async (npm) => {
      if (npm.exitCode !== null || npm.signalCode !== null) return;
      const exited = once(npm, "exit");
      process.kill(-(npm.pid as number), "SIGKILL");
      await exited;
    }),
  );
});

/** The working tree as a fresh clone has it: what git tracks or would (ignored files left out: no dist/), and node_modules. */
async function freshClone(): Promise<string> {
  const clone = await makeTempDir("media-intake-clone-");
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repo, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files.filter((file) => existsSync(join(repo, file)))) {
    await mkdir(dirname(join(clone, file)), { recursive: true });
    await copyFile(join(repo, file), join(clone, file));
  }
  await symlink(await realpath(join(repo, "node_modules")), join(clone, "node_modules"));
  return clone;
}

/** `npm run <script>` in `cwd`; resolves with the first capture of `pattern` in its output. */
async function npmRun(cwd: string, script: string, args: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<string> {
  const npm = spawn("npm", ["run", script, ...(args.length ? ["--", ...args] : [])], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  groups.push(npm);
  let stderr = "";
  npm.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<string>((found, failed) => {
    createInterface({ input: npm.stdout }).on("line", (line) => {
      const match = line.match(pattern);
      if (match) found(match[1] ?? match[0]);
    });
    npm.once("exit", (code) => failed(new Error(`npm run ${script} exited (${code}) before ${pattern}: ${stderr}`)));
  });
}

describe("docs/redis.md, By hand", () => {
  it("on a fresh clone without a build: dev-annotations, example:express and example:worker with REDIS_URL; an upload is detected by the worker", async () => {
    const clone = await freshClone();
    expect(existsSync(join(clone, "dist"))).toBe(false);
    const redis = await startRedisServer();
    const port = await freePort();
    const annotationsUrl = await npmRun(clone, "dev-annotations", ["--port", String(port), "--db", "./data/annotations.db"], {}, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const env = { REDIS_URL: redis.url, ANNOTATIONS_URL: annotationsUrl };
    // PORT=0 instead of the default 3000, which this machine may be using.
    const url = await npmRun(clone, "example:express", [], { ...env, PORT: "0" }, /"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/);
    await npmRun(clone, "example:worker", [], env, /"msg":"worker ready"/);

    const token = await signToken("alice");
    const png = samplePng(24, 24, 5);
    const form = new FormData();
    form.append("file", new Blob([png as Uint8Array<ArrayBuffer>]), "by-hand.png");
    const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { media: { id: string; mediaStatus: number; path: string }; detections: unknown[] };
    expect(response.status).toBe(200);
    expect(body.media).toMatchObject({ id: await computeMediaId(png), mediaStatus: MediaStatus.AIProcessed });
    expect(body.detections).toEqual(expect.any(Array));
    // Stored in the clone's ./data, where the steps put it.
    expect(body.media.path.startsWith(join(clone, "data", "images"))).toBe(true);
    expect(existsSync(join(clone, "data", "annotations.db"))).toBe(true);
  });
});
