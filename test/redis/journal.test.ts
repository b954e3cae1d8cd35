// The Redis engine of the journal passes the same conformance suite as the file engine, against a
// real redis-server; plus what only Redis has: an owner on a host that died for good.
import { randomBytes } from "node:crypto";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { createRedisJournal } from "../../src/queue/index.ts";
import { describeJournalConformance } from "../helpers/journal-conformance.ts";
import { startRedisServer } from "../helpers/redis-server.ts";

describeJournalConformance("redis", async () => {
  const redis = await startRedisServer();
  const prefix = `test-${randomBytes(4).toString("hex")}`;
  const open = () => {
    const journal = createRedisJournal({ connection: redis.url, prefix, heartbeatMs: 100 });
    onTestFinished(() => journal.close());
    return journal;
  };
  return { journal: open(), another: open, child: { engine: "redis", location: JSON.stringify({ url: redis.url, prefix }) } };
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
});
