// The Redis engine of the journal passes the same conformance suite as the file engine, against a
// real redis-server; plus what only Redis has: an owner on a host that died for good, and Redis
// itself stopped or paused under a running service.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { JournalUnavailableError } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import type { LocalRedis } from "../../examples/local-redis.ts";
import { describeJournalConformance } from "../helpers/journal-conformance.ts";
import { redisEvent, startRedisServer } from "../helpers/redis-server.ts";

/** A client of the test's own (so it can wait for it to come back), with the given retry policy. */
async function clientOf(redis: LocalRedis, maxRetriesPerRequest: number | null): Promise<Redis> {
  const client = new Redis(redis.url, { maxRetriesPerRequest });
  client.on("error", () => {});
  onTestFinished(() => client.disconnect());
  await redisEvent(client, "ready");
  return client;
}

/** Stops Redis and waits until the client has seen its connection go. */
async function stopUnder(redis: LocalRedis, client: Redis): Promise<void> {
  const closed = redisEvent(client, "close");
  await redis.stop();
  await closed;
}

/** Starts Redis again and waits until the client is connected again. */
async function startUnder(redis: LocalRedis, client: Redis): Promise<void> {
  const ready = redisEvent(client, "ready");
  await redis.start();
  await ready;
}

describeJournalConformance("redis", async () => {
  const redis = await startRedisServer();
  const prefix = `test-${randomBytes(4).toString("hex")}`;
  const open = () => {
    const journal = createRedisJournal({ connection: redis.url, prefix, heartbeatMs: 100 });
    onTestFinished(() => journal.close());
    return journal;
  };
  return {
    journal: open(),
    another: open,
    child: { engine: "redis", location: JSON.stringify({ url: redis.url, prefix }) },
    // Redis stopped before the journal's first call: ioredis gives up each call after one retry.
    broken: async () => {
      const client = await clientOf(redis, 1);
      await stopUnder(redis, client);
      const journal = createRedisJournal({ connection: client, prefix: `${prefix}-broken`, heartbeatMs: 100 });
      onTestFinished(() => journal.close());
      return { journal, heal: () => startUnder(redis, client) };
    },
  };
});

describe("the Redis journal", () => {
  it("keeps entries across a Redis restart (append-only file) and judges owners again after it", async () => {
    const redis = await startRedisServer();
    const journal = createRedisJournal({ connection: redis.url, prefix: "restart", heartbeatMs: 100 });
    const handle = await journal.add({ kind: "run", id: "00000000000000aa", state: "active", at: Date.now() });
    await redis.restart();
    // ioredis reconnects; the heartbeat puts this process's owner key back.
    await vi.waitFor(async () => expect(await journal.list()).toEqual([expect.objectContaining({ key: handle.key, mine: true, ownerAlive: true })]), { timeout: 10_000 });
    await handle.remove();
    expect(await journal.list()).toEqual([]);
    await journal.close();
  });

  it("Redis stopped mid-run: every call fails with JournalUnavailableError (never waits in the offline queue), and works again once Redis is back", async () => {
    const redis = await startRedisServer();
    // As BullMQ wants its clients: ioredis alone would hold every command until Redis is back.
    const client = await clientOf(redis, null);
    const journal = createRedisJournal({ connection: client, prefix: "stopped", heartbeatMs: 100 });
    onTestFinished(() => journal.close());
    const handle = await journal.add({ kind: "run", id: "00000000000000ab", state: "active", at: Date.now() });
    await stopUnder(redis, client);
    const calls = [
      journal.add({ kind: "run", id: "00000000000000ac", state: "active", at: Date.now() }),
      journal.list(),
      journal.list("00000000000000ab"),
      handle.update({ state: "settle", status: 3 }),
      handle.remove(),
    ];
    for (const outcome of await Promise.allSettled(calls)) {
      expect(outcome.status).toBe("rejected");
      const error = (outcome as PromiseRejectedResult).reason as JournalUnavailableError;
      expect(error).toBeInstanceOf(JournalUnavailableError);
      expect(error).toMatchObject({ code: "JOURNAL_UNAVAILABLE", location: "redis stopped" });
      expect(error.message).toMatch(/journal.*\(redis stopped\): Redis cannot be reached/);
    }
    await startUnder(redis, client);
    expect(await journal.list()).toEqual([expect.objectContaining({ key: handle.key, mine: true, entry: handle.entry })]);
    await handle.update({ state: "settle", status: 3 });
    const next = await journal.add({ kind: "run", id: "00000000000000ad", state: "active", at: Date.now() });
    await Promise.all([handle.remove(), next.remove()]);
    expect(await journal.list()).toEqual([]);
  });

  it("Redis paused: a call is given up after `timeoutMs`, and an add given up leaves no entry once Redis answers again", async () => {
    const redis = await startRedisServer();
    const client = await clientOf(redis, null);
    const journal = createRedisJournal({ connection: client, prefix: "paused", heartbeatMs: 10_000, timeoutMs: 2_000 });
    onTestFinished(() => journal.close());
    // The heartbeat is up before the pause: the add below is sent, and not answered.
    await (await journal.add({ kind: "run", id: "00000000000000ae", state: "active", at: Date.now() })).remove();
    redis.child.kill("SIGSTOP");
    onTestFinished(() => void redis.child.kill("SIGCONT"));
    const added = journal.add({ kind: "intake", id: "00000000000000af", path: "/data/videos/00000000000000af.mp4", name: "a.mp4", mediaType: 1, userId: "u1", state: "active", at: Date.now() });
    await expect(added).rejects.toMatchObject({ name: "JournalUnavailableError", code: "JOURNAL_UNAVAILABLE", message: expect.stringMatching(/did not answer within 2000 ms/) });
    redis.child.kill("SIGCONT");
    // The given-up add landed when Redis woke, and was taken back right after it, in order.
    await client.ping();
    expect(await journal.list()).toEqual([]);
    expect((await client.keys("paused:*")).filter((key) => !key.startsWith("paused:alive:"))).toEqual([]);
  });
});
