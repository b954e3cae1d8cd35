// One way to turn the `connection` option of the Redis engines into an ioredis client.
import { Redis, type RedisOptions } from "ioredis";

/** What the Redis engines take: a client of yours, or a `redis://` URL or ioredis options for one made here. */
export type RedisConnection = Redis | string | RedisOptions;

/**
 * The client for `connection`, and whether it was made here (then its owner closes it). A client
 * made here reports its connection errors through the commands that fail; without a listener
 * ioredis would print each reconnection attempt.
 */
export function redisFrom(connection: RedisConnection): { redis: Redis; ownClient: boolean } {
  if (connection instanceof Redis) return { redis: connection, ownClient: false };
  const redis = typeof connection === "string" ? new Redis(connection, { maxRetriesPerRequest: 3 }) : new Redis({ maxRetriesPerRequest: 3, ...connection });
  redis.on("error", () => {});
  return { redis, ownClient: true };
}
