// The challenge store on Redis, for a possession check served by several processes or hosts: a
// challenge is put with SET PX (Redis drops it at its expiry) and taken with GETDEL, one command,
// so exactly one taker across all hosts ever gets it. ioredis, an optional peer, is loaded with
// this module: its entry point, `media-intake/possession/redis` (redis-entry.ts), says so when
// it is missing.
import type * as IORedis from "ioredis";
import { JournalUnavailableError } from "../errors/index.ts";
import { callRedisPromptly, checkOptionsOf, checkRedisConnection, DEFAULT_REDIS_TIMEOUT_MS, importPeer, type Peer, peerModule, requirePeer, type RedisConnection, redisFrom } from "../utils/index.ts";
import type { KeptChallenge } from "./challenge.ts";
import type { ChallengeStore } from "./store.ts";

/** ioredis, an optional peer, loaded with this module (utils/peers.ts tells why it is not a static import). */
export const ioredis: Peer<typeof IORedis> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs" ? requirePeer("ioredis", (): typeof IORedis => require("ioredis")) : await importPeer("ioredis", () => import("ioredis"));

/** Options of {@link createRedisChallengeStore}. */
export interface RedisChallengeStoreOptions {
  /** An ioredis client (left open on `close`), or a `redis://` URL or ioredis options (a client made and closed here). */
  connection: RedisConnection;
  /** Prefix of every key: `<prefix>:<challenge ID>`. @default "media-intake:possession" */
  prefix?: string;
}

/** A {@link ChallengeStore} on Redis; `close()` ends the connection it made. */
export interface RedisChallengeStore extends ChallengeStore {
  /** Ends the connection made from a URL or options (a client given is left open). */
  close(): Promise<void>;
}

/**
 * A challenge store on Redis, shared by every process and host that uses the same Redis and
 * prefix: pass it as `store` to `createPossessionCheck` in each of them, so that an answer may
 * reach another host than its challenge. `put` is `SET <prefix>:<id> <json> PX <ms to expiry>`
 * (a challenge already expired is not kept); `take` is `GETDEL`, so a challenge is handed out
 * once across all hosts, and one past its expiry never (Redis drops it; one read in the same
 * millisecond is refused here). While Redis cannot be reached, both reject with a
 * `JournalUnavailableError` (503 with `Retry-After` at the edge): at once while the client is
 * reconnecting, after 5 s when Redis does not answer.
 *
 * @throws {TypeError} an option is invalid or unknown.
 * @example
 * import { createRedisChallengeStore } from "media-intake/possession/redis";
 * const store = createRedisChallengeStore({ connection: process.env.REDIS_URL! });
 * const possession = createPossessionCheck({ directories, client, store });
 */
export function createRedisChallengeStore(options: RedisChallengeStoreOptions): RedisChallengeStore {
  const check = checkOptionsOf("createRedisChallengeStore");
  check.known(options, ["connection", "prefix"]);
  checkRedisConnection(check, options?.connection);
  const prefix = options.prefix === undefined ? "media-intake:possession" : check.string("prefix", options.prefix);
  const { redis, ownClient } = redisFrom(options.connection, peerModule(ioredis, "createRedisChallengeStore").Redis);
  const location = `redis ${prefix}`;
  const promptly = <T>(doing: string, call: () => Promise<T>) =>
    callRedisPromptly(redis, DEFAULT_REDIS_TIMEOUT_MS, call, (cause) => new JournalUnavailableError(doing, location, cause));
  const keyOf = (id: string) => `${prefix}:${id}`;
  return {
    async put(challenge) {
      const ttl = Math.ceil(challenge.expiresAt - Date.now());
      if (!(ttl > 0)) return;
      await promptly("Keeping a possession challenge", () => redis.set(keyOf(challenge.id), JSON.stringify(challenge), "PX", ttl));
    },
    async take(id) {
      const text = await promptly("Taking a possession challenge", () => redis.getdel(keyOf(id)));
      if (text === null) return undefined;
      const challenge = parseChallenge(text);
      return challenge && challenge.expiresAt > Date.now() ? challenge : undefined;
    },
    async close() {
      if (ownClient) await redis.quit().catch(() => {});
    },
  };
}

/** A kept challenge read back, or `undefined` when the value is not one (another program's key). */
function parseChallenge(text: string): KeptChallenge | undefined {
  try {
    const value = JSON.parse(text) as Partial<KeptChallenge>;
    const valid =
      typeof value.id === "string" &&
      typeof value.nonce === "string" &&
      Array.isArray(value.ranges) &&
      typeof value.expiresAt === "number" &&
      typeof value.userId === "string" &&
      typeof value.mediaId === "string" &&
      typeof value.size === "number";
    return valid ? (value as KeptChallenge) : undefined;
  } catch {
    return undefined;
  }
}
