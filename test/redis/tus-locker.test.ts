// The Redis tus locker against the clauses of tus-node-server's own locker contract
// (packages/server/src/test/lockerContract.ts: acquire and release; take a lock by asking its
// holder, once; ERR_LOCK_TIMEOUT after the acquire timeout and on abort; unlocking a lock never
// acquired rejects), written here for this locker, on a real redis-server; plus what only a
// locker across processes meets: a lock lost to its TTL while a newer lock of the same process holds it.
import { randomUUID } from "node:crypto";
import { ERRORS } from "@tus/server";
import { Redis } from "ioredis";
import { beforeEach, describe, expect, it, onTestFinished } from "vitest";
import type { LocalRedis } from "../../examples/local-redis.ts";
import { JournalUnavailableError } from "../../src/index.ts";
import { createRedisTusLocker, type RedisTusLocker, type RedisTusLockerOptions } from "../../src/tus/index.ts";
import { redisEvent, startRedisServer } from "../helpers/redis-server.ts";

let redis: LocalRedis;
let redisUrl: string;
let prefix: string;

beforeEach(async () => {
  redis = await startRedisServer();
  redisUrl = redis.url;
  prefix = `tus-lock-${randomUUID()}`;
});

/** A locker of its own (its own connections, as another process would have, unless given a client) on the test's Redis. */
function locker(options: Partial<Omit<RedisTusLockerOptions, "prefix">> = {}): RedisTusLocker {
  const made = createRedisTusLocker({ connection: redisUrl, prefix, ...options });
  onTestFinished(() => made.close());
  return made;
}

/** A request-release callback that counts its calls and says when it was first called. */
function releaseRequests(then: () => void | Promise<void> = () => {}) {
  let asked!: () => void;
  const first = new Promise<void>((resolve) => (asked = resolve));
  const calls = { count: 0, first };
  const callback = async () => {
    calls.count += 1;
    asked();
    await then();
  };
  return Object.assign(calls, { callback });
}

const never = () => new AbortController().signal;

describe("the Redis tus locker, on tus-node-server's locker contract", () => {
  it("acquires a lock and releases it; the same ID can be locked again after", async () => {
    const tus = locker();
    const id = randomUUID();
    const lock = tus.newLock(id);
    await lock.lock(never(), () => {});
    await lock.unlock();
    const again = tus.newLock(id);
    await again.lock(never(), () => {});
    await again.unlock();
  });

  it("takes a held lock by asking its holder to release it, once; the contender itself is never asked", async () => {
    for (const [holderSide, contenderSide] of [
      [locker(), undefined],
      [locker(), locker()],
    ] as const) {
      const id = randomUUID();
      const holder = holderSide.newLock(id);
      const contender = (contenderSide ?? holderSide).newLock(id);
      const holderAsked = releaseRequests(() => holder.unlock());
      const contenderAsked = releaseRequests();
      await holder.lock(never(), holderAsked.callback);
      await contender.lock(never(), contenderAsked.callback);
      await contender.unlock();
      expect(holderAsked.count).toBe(1);
      expect(contenderAsked.count).toBe(0);
    }
  });

  it("rejects with ERR_LOCK_TIMEOUT when the holder never lets go, having asked it once, not at each look", async () => {
    const tus = locker({ acquireTimeoutMs: 1_000 });
    const id = randomUUID();
    const holder = tus.newLock(id);
    const holderAsked = releaseRequests();
    await holder.lock(never(), holderAsked.callback);
    const contender = locker({ acquireTimeoutMs: 1_000 }).newLock(id);
    const waited = contender.lock(never(), () => {});
    const outcome = waited.catch((error: unknown) => error);
    await holderAsked.first;
    // Four looks at least (one each 250 ms) before the timeout: the holder was asked at the first.
    const error = await outcome;
    expect(holderAsked.count).toBe(1);
    expect(error).toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await holder.unlock();
  });

  it("stops waiting with ERR_LOCK_TIMEOUT (as tus's own lockers, not an AbortError) when its signal aborts", async () => {
    const tus = locker();
    const id = randomUUID();
    const holder = tus.newLock(id);
    const controller = new AbortController();
    // The holder refuses to let go; the contender's request gives up once the holder was asked.
    const holderAsked = releaseRequests(() => controller.abort(new Error("the client went away")));
    await holder.lock(never(), holderAsked.callback);
    const contenderAsked = releaseRequests();
    await expect(locker().newLock(id).lock(controller.signal, contenderAsked.callback)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    expect(contenderAsked.count).toBe(0);
    // A signal aborted before the call: the same answer, at once.
    await expect(tus.newLock(id).lock(controller.signal, () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await holder.unlock();
  });

  it("rejects the unlock of a lock never acquired, or released already", async () => {
    const tus = locker();
    await expect(tus.newLock(randomUUID()).unlock()).rejects.toThrow(/unlocked lock/);
    const lock = tus.newLock(randomUUID());
    await lock.lock(never(), () => {});
    await lock.unlock();
    await expect(lock.unlock()).rejects.toThrow(/unlocked lock/);
  });
});

describe("the Redis tus locker across processes", () => {
  it("a lock lost to its TTL, unlocked late, leaves the newer lock of the same process in place: it is still asked to let go", async () => {
    const tus = locker();
    const id = randomUUID();
    const stale = tus.newLock(id);
    await stale.lock(never(), () => {});
    // Its key goes behind its back, as when a holder stalls past the TTL.
    const raw = new Redis(redisUrl);
    onTestFinished(() => raw.disconnect());
    expect(await raw.del(`${prefix}:${id}`)).toBe(1);
    const newer = tus.newLock(id);
    const newerAsked = releaseRequests(() => newer.unlock());
    await newer.lock(never(), newerAsked.callback);
    await stale.unlock();
    // Another process wants the upload: the newer holder is asked, lets go, and it is had.
    const elsewhere = locker().newLock(id);
    await elsewhere.lock(never(), () => {});
    expect(newerAsked.count).toBe(1);
    await elsewhere.unlock();
  });

  it("Redis stopped: a lock request fails promptly with JournalUnavailableError (never waits in the offline queue), an unlock lets go, and locks work again once Redis is back", async () => {
    // As BullMQ wants its clients: ioredis alone would hold every command until Redis is back.
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    client.on("error", () => {});
    onTestFinished(() => client.disconnect());
    await redisEvent(client, "ready");
    const tus = locker({ connection: client });
    const held = tus.newLock(randomUUID());
    await held.lock(never(), () => {});
    const closed = redisEvent(client, "close");
    await redis.stop();
    await closed;
    const id = randomUUID();
    const refused = await tus.newLock(id).lock(never(), () => {}).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(JournalUnavailableError);
    expect(refused).toMatchObject({ code: "JOURNAL_UNAVAILABLE", message: expect.stringMatching(new RegExp(`^Locking tus upload ${id} \\(redis ${prefix}\\): Redis cannot be reached`)) });
    // The request that held a lock ends as it would: its key lapses after its TTL.
    await held.unlock();
    const ready = redisEvent(client, "ready");
    await redis.start();
    await ready;
    const again = tus.newLock(id);
    await again.lock(never(), () => {});
    await again.unlock();
  });

  it("Redis down at the first request: the failed subscription is not kept, and the next request once Redis is back subscribes and locks", async () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    client.on("error", () => {});
    onTestFinished(() => client.disconnect());
    await redisEvent(client, "ready");
    const closed = redisEvent(client, "close");
    await redis.stop();
    await closed;
    const tus = locker({ connection: client });
    const id = randomUUID();
    await expect(tus.newLock(id).lock(never(), () => {})).rejects.toBeInstanceOf(JournalUnavailableError);
    const ready = redisEvent(client, "ready");
    await redis.start();
    await ready;
    // Subscribed this time: a holder in another locker is asked, lets go, and the lock is had.
    const holder = locker().newLock(id);
    await holder.lock(never(), () => holder.unlock());
    const lock = tus.newLock(id);
    await lock.lock(never(), () => {});
    await lock.unlock();
  });
});
