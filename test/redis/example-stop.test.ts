// The example's processes with Redis stop within SHUTDOWN_TIMEOUT_MS whatever Redis does: a Redis
// hung (SIGSTOP: the kernel takes the connection, nothing answers) or not listening is left
// behind, the exit is 1 and the log names the variable and what was not closed; a second signal
// stops the worker at once.
import { once } from "node:events";
import { join, resolve } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { freePort } from "../../examples/local-redis.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { startChild } from "../helpers/child.ts";
import { exampleEnv } from "../helpers/example-env.ts";
import { storageDirectoriesIn } from "../helpers/fixture.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

const secret = "redis-example-stop-secret-0123456789abcdef";
const examples = resolve(import.meta.dirname, "../../examples/express");

/** The example's environment with Redis at `redisUrl`, a dev annotations server, its folders in a temp root. */
async function environment(redisUrl: string, env: NodeJS.ProcessEnv) {
  const root = await makeTempDir();
  const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), jwtSecret: secret });
  onTestFinished(() => annotations.close());
  return exampleEnv({ annotationsUrl: annotations.url, directories: storageDirectoriesIn(root), secret }, { REDIS_URL: redisUrl, ...env });
}

/** Sends `signal`, and resolves with the exit code and how long the exit took. */
async function stop(child: ReturnType<typeof startChild>, signal: NodeJS.Signals = "SIGTERM") {
  const exited = once(child.child, "exit");
  const sent = performance.now();
  child.child.kill(signal);
  const [code] = (await exited) as [number | null];
  return { code, ms: performance.now() - sent };
}

const errors = (child: ReturnType<typeof startChild>) => child.lines().filter((line) => line.includes('"level":50'));

describe("npm run example:worker stops within SHUTDOWN_TIMEOUT_MS", () => {
  it("Redis hung: SIGTERM exits 1 within the limit, naming SHUTDOWN_TIMEOUT_MS and what it could not close", async () => {
    const redis = await startRedisServer();
    const worker = startChild(join(examples, "worker.ts"), null, await environment(redis.url, { SHUTDOWN_TIMEOUT_MS: "1000" }));
    await worker.match(/"msg":"worker ready"/);
    redis.child.kill("SIGSTOP");
    const { code, ms } = await stop(worker);
    expect(code).toBe(1);
    // The limit, and the least the closes get after it: never Redis's time.
    expect(ms).toBeLessThan(1000 + 1000 + 3000);
    expect(errors(worker).join("\n")).toMatch(/"msg":"stopping: SHUTDOWN_TIMEOUT_MS \(1000 ms\) ran out while closing the worker \(its running jobs, and Redis at REDIS_URL\).*; exiting without waiting\. Raise SHUTDOWN_TIMEOUT_MS/);
  });

  it("Redis not listening: SIGTERM exits within the limit", async () => {
    const worker = startChild(join(examples, "worker.ts"), null, await environment(`redis://127.0.0.1:${await freePort()}`, { SHUTDOWN_TIMEOUT_MS: "1000" }));
    await worker.match(/"msg":"worker ready"/);
    const { code, ms } = await stop(worker);
    // 0 when its closes gave up on Redis by themselves in time, else 1: never longer.
    expect([0, 1]).toContain(code);
    expect(ms).toBeLessThan(1000 + 1000 + 3000);
  });

  it("a second signal exits at once (1), whatever the limit and Redis", async () => {
    const redis = await startRedisServer();
    const worker = startChild(join(examples, "worker.ts"), null, await environment(redis.url, { SHUTDOWN_TIMEOUT_MS: "600000" }));
    await worker.match(/"msg":"worker ready"/);
    redis.child.kill("SIGSTOP");
    worker.child.kill("SIGTERM");
    await worker.match(/"msg":"stopping: running jobs finish first \(SHUTDOWN_TIMEOUT_MS=600000\)"/);
    const { code, ms } = await stop(worker, "SIGINT");
    expect(code).toBe(1);
    expect(ms).toBeLessThan(3000);
    expect(errors(worker).join("\n")).toContain('"msg":"stopping at once on a second SIGINT: running jobs run again on another worker once their lock lapses (WORKER_LOCK_MS=30000)"');
  });
});

describe("npm run example:express with REDIS_URL stops within SHUTDOWN_TIMEOUT_MS", () => {
  it("Redis hung, no request under way: SIGTERM exits 1 within the limit, naming what it could not close", async () => {
    const redis = await startRedisServer();
    const server = startChild(join(examples, "server.ts"), null, await environment(redis.url, { SHUTDOWN_TIMEOUT_MS: "1000" }));
    const [, url] = (await server.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    // Every connection to Redis up (the readiness check uses the journal's and the queue's too).
    for (;;) if ((await fetch(`${url}/readyz`)).status === 200) break;
    redis.child.kill("SIGSTOP");
    const { code, ms } = await stop(server);
    expect(code).toBe(1);
    expect(ms).toBeLessThan(1000 + 1000 + 3000);
    await server.match(/"requests":0,.*"msg":"stopping: the requests under way finish first \(SHUTDOWN_TIMEOUT_MS=1000\)"/);
    expect(errors(server).join("\n")).toMatch(/"msg":"stopping: SHUTDOWN_TIMEOUT_MS \(1000 ms\) ran out while closing .*REDIS_URL.*; exiting without waiting/);
  });
});
