// A real redis-server for the distributed suite: on a free loopback port, its files in a temp
// directory, stopped after the test. No mock of Redis.
import { afterEach } from "vitest";
import { type LocalRedis, startLocalRedis } from "../../examples/local-redis.ts";
import { makeTempDir } from "./temp-dir.ts";

const running: LocalRedis[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((redis) => redis.stop()));
});

/** Starts redis-server; `restart()` stops it and starts it again on the same port and directory. */
export async function startRedisServer(): Promise<LocalRedis> {
  const redis = await startLocalRedis(await makeTempDir("media-intake-redis-"));
  running.push(redis);
  return redis;
}

/**
 * An ioredis client's event, waited for: the client's `error` events (a reconnect refused while
 * Redis is down) are part of the wait, not its failure, as they would be for `events.once`.
 */
export function redisEvent(client: { once(event: string, listener: () => void): unknown }, event: "ready" | "close" | "end"): Promise<void> {
  return new Promise<void>((resolve) => client.once(event, () => resolve()));
}
