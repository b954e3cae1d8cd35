// The journal on Redis, for several hosts: the second engine of `MediaJournal`. Entries live in
// one hash (and a set per media ID); each owner keeps a key that expires unless it beats, so an
// owner on a host that died for good is dead once its key expires, whatever host asks. A claim
// is a script that moves the entry to the claimer only while its owner's key is gone: exactly
// one claimer wins. Entries are never renewed, so a removed entry never comes back. Its own entry
// point, `media-intake/journal/redis`, whose only peer dependency is ioredis.
import { randomBytes } from "node:crypto";
import type * as IORedis from "ioredis";
import { JournalUnavailableError } from "../errors/index.ts";
import { callRedisPromptly, checkOptionsOf, checkRedisConnection, DEFAULT_REDIS_TIMEOUT_MS, importPeer, MINIMUM, type Peer, peerModule, processOwnerKey, requirePeer, type RedisConnection, RedisDisconnectedError, redisFrom } from "../utils/index.ts";
import type { JournalEntry, JournalHandle, JournalRecord, MediaJournal } from "./journal.ts";

/**
 * ioredis, an optional peer, loaded with this module: `media-intake/journal/redis` (redis-entry.ts)
 * says so when it is missing (utils/peers.ts tells why it is not a static import).
 */
export const ioredis: Peer<typeof IORedis> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs" ? requirePeer("ioredis", (): typeof IORedis => require("ioredis")) : await importPeer("ioredis", () => import("ioredis"));

/** Redis as the engine takes it: a URL, ioredis options, or an ioredis client of yours. */
export type { RedisConnection };

/** Options of {@link createRedisJournal}. */
export interface RedisJournalOptions {
  /** An ioredis client (left open on `close`), or a `redis://` URL or ioredis options (a client made and closed here). */
  connection: RedisConnection;
  /** Prefix of every key. @default "media-intake:journal" */
  prefix?: string;
  /**
   * How often this process renews its owner key; an owner whose key was not renewed for three
   * beats is dead, and its entries are taken over.
   * @default 10_000
   */
  heartbeatMs?: number;
  /**
   * How long a journal call waits for Redis: past it, or at once while the connection is lost,
   * the call rejects with a `JournalUnavailableError` (503 with `Retry-After` at the edge) rather
   * than wait in ioredis's offline queue. Calls work again as soon as Redis is back.
   * @default 5_000
   */
  timeoutMs?: number;
}

/** Moves an entry to the claimer while its owner is the one expected and its owner key is gone. */
const CLAIM = `
if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then return nil end
if redis.call("EXISTS", KEYS[3]) == 1 then return nil end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
return redis.call("HGET", KEYS[2], ARGV[1])`;
/** Replaces an entry while this owner still holds it. */
const UPDATE = `
if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
return 1`;
/** Removes an entry while this owner still holds it. */
const REMOVE = `
if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("SREM", KEYS[3], ARGV[1])
return 1`;

/**
 * A {@link MediaJournal} on Redis, shared by every process and host that uses the same Redis and
 * prefix: what `intakeMedia`, `trackMediaProcessing` and `startRecovery` take as `journal` when
 * the service runs on several hosts.
 *
 * @example
 * const journal = createRedisJournal({ connection: process.env.REDIS_URL! });
 * startRecovery({ client, directories, journal });
 */
export function createRedisJournal(options: RedisJournalOptions): MediaJournal {
  const check = checkOptionsOf("createRedisJournal");
  check.known(options, ["connection", "prefix", "heartbeatMs", "timeoutMs"]);
  checkRedisConnection(check, options.connection);
  const { prefix = "media-intake:journal" } = options;
  const heartbeatMs = check.number("heartbeatMs", options.heartbeatMs ?? 10_000, { min: MINIMUM.heartbeatMs, unit: "ms" });
  const timeoutMs = check.integer("timeoutMs", options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS, { min: MINIMUM.timeoutMs, unit: "ms" });
  const { redis, ownClient } = redisFrom(options.connection, peerModule(ioredis, "createRedisJournal").Redis);
  const keys = {
    entries: `${prefix}:entries`,
    owners: `${prefix}:owners`,
    byId: (id: string) => `${prefix}:id:${id}`,
    alive: (owner: string) => `${prefix}:alive:${owner}`,
  };
  const location = `redis ${prefix}`;
  /** One call to Redis, promptly or a `JournalUnavailableError` saying what was being done. */
  const promptly = <T>(doing: string, call: () => Promise<T>) =>
    callRedisPromptly(redis, timeoutMs, call, (cause) => new JournalUnavailableError(doing, location, cause));
  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<unknown> | undefined;
  const beat = () => promptly("Renewing this process's journal heartbeat", () => redis.set(keys.alive(processOwnerKey), "1", "PX", 3 * heartbeatMs));
  // Never kept when it failed: the next call tries again, so an outage heals once Redis is back.
  const prepare = () =>
    (beating ??= beat().then(
      () => {
        timer ??= setInterval(() => void beat().catch(() => {}), heartbeatMs);
        timer.unref();
      },
      (error: unknown) => {
        beating = undefined;
        throw error;
      },
    ));

  function handleFor(key: string, entry: JournalEntry): JournalHandle {
    let current = entry;
    return {
      key,
      get entry() {
        return current;
      },
      async update(changes) {
        const next = Object.freeze({ ...current, ...changes }) as JournalEntry;
        const done = await promptly(`Updating journal entry ${key}`, () => redis.eval(UPDATE, 2, keys.owners, keys.entries, key, processOwnerKey, JSON.stringify(next)));
        if (done !== 1) throw new Error(`Updating journal entry ${key}: it is no longer this process's (taken over, or removed).`);
        current = next;
      },
      async remove() {
        await promptly(`Removing journal entry ${key}`, () => redis.eval(REMOVE, 3, keys.owners, keys.entries, keys.byId(current.id), key, processOwnerKey));
      },
    };
  }

  const journal: MediaJournal = {
    location,
    async add(entry) {
      await prepare();
      const key = `${entry.id}.${entry.kind}.${randomBytes(6).toString("hex")}`;
      const frozen = Object.freeze({ ...entry });
      try {
        await promptly(`Adding a journal entry for media ${entry.id}`, () =>
          redis.multi().hset(keys.entries, key, JSON.stringify(frozen)).hset(keys.owners, key, processOwnerKey).sadd(keys.byId(entry.id), key).exec(),
        );
      } catch (error) {
        // Sent, and given up: it may still land once Redis answers. Taken back after it, in order
        // on the same connection, so the refused call leaves nothing behind.
        if (!((error as Error).cause instanceof RedisDisconnectedError)) {
          void redis.eval(REMOVE, 3, keys.owners, keys.entries, keys.byId(entry.id), key, processOwnerKey).catch(() => {});
        }
        throw error;
      }
      return handleFor(key, frozen);
    },
    list: (id) =>
      promptly(id === undefined ? "Listing the journal" : `Listing the journal entries of media ${id}`, async () => {
        const names = id === undefined ? await redis.hkeys(keys.entries) : await redis.smembers(keys.byId(id));
        if (names.length === 0) return [];
        const [entries, owners] = await Promise.all([redis.hmget(keys.entries, ...names), redis.hmget(keys.owners, ...names)]);
        const distinct = [...new Set(owners.filter((owner): owner is string => owner !== null))];
        const alive = await Promise.all(distinct.map(async (owner) => owner === processOwnerKey || (await redis.exists(keys.alive(owner))) === 1));
        const isAlive = new Map(distinct.map((owner, index) => [owner, alive[index] === true]));
        const records: JournalRecord[] = [];
        names.forEach((key, index) => {
          const text = entries[index];
          const owner = owners[index];
          // Removed between the listing and the read.
          if (!text || !owner) return;
          records.push(
            Object.freeze({ key, owner, ownerAlive: isAlive.get(owner) === true, mine: owner === processOwnerKey, entry: Object.freeze(JSON.parse(text) as JournalEntry) }),
          );
        });
        return records;
      }),
    async claim(record) {
      if (record.mine) return handleFor(record.key, record.entry);
      if (record.ownerAlive) return undefined;
      await prepare();
      const text = (await promptly(`Claiming journal entry ${record.key}`, () =>
        redis.eval(CLAIM, 3, keys.owners, keys.entries, keys.alive(record.owner), record.key, record.owner, processOwnerKey),
      )) as string | null;
      if (!text) return undefined;
      const handle = handleFor(record.key, Object.freeze(JSON.parse(text) as JournalEntry));
      if (handle.entry.state !== "settle") await handle.update({ state: "settle" });
      return handle;
    },
    // Owner keys expire by themselves; entries of dead owners wait for a claim.
    async sweep() {
      return 0;
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      beating = undefined;
      await promptly("Closing the journal", () => redis.del(keys.alive(processOwnerKey))).catch(() => {});
      if (ownClient) await redis.quit().catch(() => {});
    },
  };
  return journal;
}
