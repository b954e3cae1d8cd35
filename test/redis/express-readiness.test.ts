// The example with REDIS_URL configured and Redis down: it serves, /readyz is 503 naming
// REDIS_URL, uploads are answered at once with 503 and Retry-After (never a hang, never a 500),
// and it is ready again once Redis is back. However many checks run, hung, down or up, the
// readiness PING adds no listener to its connection.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SignJWT } from "jose";
import { describe, expect, it, onTestFinished } from "vitest";
import { createDetectionsApp } from "../../examples/express/app.ts";
import type { Detection } from "../../examples/express/detector.ts";
import { redisPinger } from "../../examples/express/readiness.ts";
import { samplePng } from "../../examples/sample-media.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { createAnnotationsClient } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { createDetectionQueue } from "../../src/queue/index.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

const secret = "redis-readiness-secret-0123456789abcdef";

describe("the example with Redis configured and down", () => {
  it("serves; /readyz is 503 naming REDIS_URL; uploads get 503 with Retry-After at once; ready once Redis is back", async () => {
    const root = await makeTempDir();
    const redis = await startRedisServer();
    const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const token = await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    const detections = createDetectionQueue<Detection[]>({ connection: { url: redis.url } });
    const journal = createRedisJournal({ connection: redis.url, prefix: "media-intake:journal" });
    const pinger = await redisPinger(redis.url);
    onTestFinished(async () => {
      await pinger.close();
      await detections.close();
      await journal.close();
    });
    const app = createDetectionsApp({
      client: createAnnotationsClient({ baseUrl: annotations.url, token }),
      directories: { videosDir: join(root, "videos"), imagesDir: join(root, "images") },
      auth: { verify: { secret } },
      queue: { detections, journal, resultWaitMs: 300 },
      readiness: { annotationsUrl: annotations.url, redisPing: pinger.ping },
    });
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const readyz = async () => {
      const response = await fetch(`${url}/readyz`);
      return { status: response.status, body: (await response.json()) as { checks: Record<string, { ok: boolean; variable?: string; message?: string }> } };
    };
    const upload = async (route: "/detect" | "/detect-multer", seed: number) => {
      const form = new FormData();
      form.append("file", new Blob([samplePng(12, 12, seed) as Uint8Array<ArrayBuffer>]), "p.png");
      const response = await fetch(`${url}${route}`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, retryAfter: response.headers.get("retry-after"), code: ((await response.json()) as { error?: { code: string } }).error?.code };
    };
    expect((await readyz()).status).toBe(200);

    await redis.stop();
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.redis).toMatchObject({ ok: false, variable: "REDIS_URL", message: expect.stringContaining("REDIS_URL does not answer PING") });
    expect(down.body.checks.annotations).toEqual({ ok: true });
    for (const [route, seed] of [["/detect", 1], ["/detect-multer", 2]] as const) {
      expect(await upload(route, seed)).toEqual({ status: 503, retryAfter: "5", code: "JOURNAL_UNAVAILABLE" });
    }
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });

    await redis.start();
    await new Promise<void>((resolve) => {
      const again = () => void readyz().then((ready) => (ready.status === 200 ? resolve() : setImmediate(again)));
      again();
    });
    // Taken again: queued (no worker runs here, so the answer is 202 with where to poll).
    expect(await upload("/detect", 3)).toEqual({ status: 202, retryAfter: null, code: undefined });
  });
});

describe("the readiness PING's connection", () => {
  it("50 /readyz while Redis hangs, answers, is down and is back: no listener added to the connection per check", async () => {
    const root = await makeTempDir();
    const redis = await startRedisServer();
    // Hung: the kernel accepts the connection, nothing answers (a Redis stuck, or stopped).
    redis.child.kill("SIGSTOP");
    const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const token = await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    const pinger = await redisPinger(redis.url);
    onTestFinished(() => pinger.close());
    const app = createDetectionsApp({
      client: createAnnotationsClient({ baseUrl: annotations.url, token }),
      directories: { videosDir: join(root, "videos"), imagesDir: join(root, "images") },
      auth: { verify: { secret } },
      readiness: { annotationsUrl: annotations.url, redisPing: pinger.ping, timeoutMs: 100 },
    });
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const readyz = async () => {
      const response = await fetch(`${url}/readyz`);
      return { status: response.status, redis: ((await response.json()) as { checks: { redis: { ok: boolean; variable?: string } } }).checks.redis };
    };
    // Only the Redis check is this test's: the others (100 ms each here) may time out on a busy
    // machine, which makes the whole answer 503 without saying anything of Redis.
    /** 50 checks one after the other, the Redis one each time ok (with a 200 unless another check failed) or failing (503). */
    const fifty = async (status: number) => {
      for (let i = 0; i < 50; i += 1) {
        const ready = await readyz();
        expect(ready.redis).toEqual(status === 200 ? { ok: true } : expect.objectContaining({ ok: false, variable: "REDIS_URL" }));
        if (status === 503) expect(ready.status).toBe(503);
      }
    };
    const until = (status: number) =>
      new Promise<void>((resolve) => {
        const again = () => void readyz().then((ready) => (ready.redis.ok === (status === 200) ? resolve() : setImmediate(again)));
        again();
      });
    const listeners = () => ({ ready: pinger.connection.listenerCount("ready"), error: pinger.connection.listenerCount("error") });
    // The pinger's own two, and the ready/close pair ioredis holds while a connection attempt is under way.
    const bound = { ready: 2, error: 1 };

    await fifty(503);
    expect(pinger.connection.status).toBe("connect");
    expect(listeners()).toEqual(bound);

    redis.child.kill("SIGCONT");
    await until(200);
    await fifty(200);
    expect(listeners()).toEqual({ ready: 1, error: 1 });

    await redis.stop();
    await until(503);
    await fifty(503);
    expect(listeners().ready).toBeLessThanOrEqual(bound.ready);
    expect(listeners().error).toBe(bound.error);

    await redis.start();
    await until(200);
    await fifty(200);
    expect(listeners()).toEqual({ ready: 1, error: 1 });
  });
});
