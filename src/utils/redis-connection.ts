// One way to turn the `connection` option of the Redis engines into an ioredis client, and one
// way to call Redis promptly or not at all. Shared by the Redis journal (journal/redis.ts), the
// tus locker (tus/redis-locker.ts) and BullMQ detection (queue/), so it sits below all three.
// It loads no ioredis itself (its imports of ioredis are types only): each engine hands it the
// ioredis class it loaded, at once for the journal, lazily for the tus locker, so that
// `media-intake/tus` loads without ioredis installed.
import type { Redis, RedisOptions } from "ioredis";

/** What the Redis engines take: a client of yours, or a `redis://` URL or ioredis options for one made here. */
export type RedisConnection = Redis | string | RedisOptions;

/**
 * The client for `connection`, and whether it was made here (then its owner closes it). `Client`
 * is ioredis's `Redis` class, as the caller loaded it. A client made here reports its connection
 * errors through the commands that fail; without a listener ioredis would print each
 * reconnection attempt.
 */
/**
 * Checks a `connection` option when it is given: a `redis://` or `rediss://` URL, ioredis (or
 * BullMQ) connection options, or a client. Missing, it would mean localhost:6379 in silence,
 * which in a service whose Redis variable is unset is a misconfiguration, not a default.
 */
export function checkRedisConnection(check: { fail(name: string, expected: string, value: unknown): never }, value: unknown): void {
  if (typeof value === "string" ? /^rediss?:\/\/./.test(value) : typeof value === "object" && value !== null) return;
  check.fail("connection", "a redis:// or rediss:// URL, connection options or a client", value);
}

export function redisFrom(connection: RedisConnection, Client: typeof Redis): { redis: Redis; ownClient: boolean } {
  if (connection instanceof Client) return { redis: connection, ownClient: false };
  const redis = typeof connection === "string" ? new Client(connection, { maxRetriesPerRequest: 3 }) : new Client({ maxRetriesPerRequest: 3, ...connection });
  redis.on("error", () => {});
  return { redis, ownClient: true };
}

/** How long a call waits for Redis before it is given up, unless the engine's options say otherwise. */
export const DEFAULT_REDIS_TIMEOUT_MS = 5_000;

/** ioredis statuses of a client that has lost its connection: a command would wait in its offline queue. */
const disconnected = new Set(["reconnecting", "close", "end"]);

/** Redis's own refusals that pass once Redis is itself again (loading, a failover, out of memory, a busy script). */
const transientReply = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM)\b/;

/** The connection was already lost when the call came: nothing was sent. */
export class RedisDisconnectedError extends Error {
  constructor(status: string) {
    super(`Redis cannot be reached (the connection is ${status === "end" ? "closed" : "lost, reconnecting"})`);
    this.name = "RedisDisconnectedError";
  }
}

/**
 * Runs `call` promptly or not at all: at once refused while the client has lost its connection
 * (ioredis would hold the command in its offline queue: for good with `maxRetriesPerRequest:
 * null`, as BullMQ wants it), and given up after `timeoutMs` when Redis does not answer (paused,
 * a partition, a first connection that does not come). Every such failure, and Redis's transient
 * refusals, reject with `unavailable(cause)`; other replies of Redis (a script's error) as they are.
 * A call given up after it was sent may still land once Redis answers again.
 */
export async function callRedisPromptly<Client extends { status: string }, T>(
  client: Client | Promise<Client>,
  timeoutMs: number,
  call: (client: Client) => Promise<T>,
  unavailable: (cause: unknown) => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([
      (async () => {
        const ready = await client;
        if (disconnected.has(ready.status)) throw new RedisDisconnectedError(ready.status);
        return call(ready);
      })(),
      deadline,
    ]);
  } catch (error) {
    const reply = (error as Error | undefined)?.name === "ReplyError" && !transientReply.test((error as Error).message);
    throw reply ? error : unavailable(error);
  } finally {
    clearTimeout(timer);
  }
}
