// The tus locker on Redis, for a tus endpoint served by several processes or hosts: one upload's
// requests (PATCH, HEAD, DELETE, the finish) take turns across all of them. A lock is a key set
// only if absent (SET NX) with a TTL that its holder renews; a request that wants a held lock
// asks the holder to let go (pub/sub), as @tus/server's MemoryLocker does within a process, and
// takes it when the holder's unlock says so (or its key expires, if the holder died). ioredis is
// loaded when the locker is made, not when `media-intake/tus` is: a tus endpoint on one process
// needs no ioredis installed.
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { JournalUnavailableError } from "../errors/index.ts";
import { callRedisPromptly, checkOptionsOf, checkRedisConnection, DEFAULT_REDIS_TIMEOUT_MS, importPeer, MINIMUM, onceSucceeded, peerModule, type RedisConnection, RedisDisconnectedError, redisFrom } from "../utils/index.ts";

/** The lock of one upload, as @tus/server's `Lock` (structurally: this entry needs no @tus package to load). */
export interface TusLock {
  /**
   * Resolves once held. Meanwhile the holder (in any process) is asked once to release it: its
   * `requestRelease` is called once per holding. Rejects with @tus/server's
   * `ERRORS.ERR_LOCK_TIMEOUT` after the acquire timeout or once `signal` aborts.
   */
  lock(signal: AbortSignal, requestRelease: () => void | Promise<void>): Promise<void>;
  /** Lets go of it; rejects when this lock is not held (never acquired, or released already). */
  unlock(): Promise<void>;
}

/**
 * A tus locker, as @tus/server's `Locker` (structurally: @tus/server's `MemoryLocker` is one,
 * and this entry's types do not reach @tus/server's, whose srvx types need aws-lambda, Bun and
 * Deno types under `skipLibCheck: false`).
 */
export interface TusLocker {
  newLock(id: string): TusLock;
}

/** @tus/server's `Locker`, on Redis; `close()` ends its connections. */
export interface RedisTusLocker extends TusLocker {
  close(): Promise<void>;
}

/** Options of {@link createRedisTusLocker}. */
export interface RedisTusLockerOptions {
  /** An ioredis client (left open on `close`; a duplicate of it subscribes), or a `redis://` URL or ioredis options. */
  connection: RedisConnection;
  /** Prefix of every key and channel. @default "media-intake:tus-lock" */
  prefix?: string;
  /**
   * A lock's key expires this long after its last renewal (every third of it): a holder that
   * died frees its uploads after this long. A holder whose event loop stalls longer loses them.
   * @default 30_000
   */
  lockTtlMs?: number;
  /** How long a request waits for a lock before it fails (500, as @tus/server's MemoryLocker). @default 30_000 */
  acquireTimeoutMs?: number;
}

/** Renews a lock while this holder still has it. */
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`;
/** Deletes a lock while this holder still has it, and says so to whoever waits. */
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) redis.call("PUBLISH", KEYS[2], ARGV[2]) return 1 end return 0`;
/** A waiter looks again this often even without word from the holder (a holder that died says nothing). */
const RECHECK_MS = 250;

/**
 * @tus/server's own `ERRORS.ERR_LOCK_TIMEOUT`: what its lockers reject with (a plain object, not
 * an Error: its locker contract checks for this very value) and what it answers (500). Loaded
 * only when a lock cannot be had, so this entry does not need @tus/server to load.
 */
async function lockTimeout(): Promise<unknown> {
  try {
    return (await import("@tus/server")).ERRORS.ERR_LOCK_TIMEOUT;
  } catch {
    return { status_code: 500, body: "failed to acquire lock before timeout" };
  }
}

/**
 * ioredis's client class, loaded on first use: an optional peer dependency that only this locker
 * needs. Without it, rejects with an error that names it and its install command.
 */
async function loadRedisClass(): Promise<typeof Redis> {
  return peerModule(await importPeer("ioredis", () => import("ioredis")), "createRedisTusLocker (media-intake/tus)").Redis;
}

/** A lock this process holds, and whether its holder was asked to let go (once is enough). */
interface Holding {
  readonly requestRelease: () => void | Promise<void>;
  asked: boolean;
}

/** Asks a holder to let go, once per holding; a throw inside its callback is the holder's own. */
function askToRelease(holding: Holding): void {
  if (holding.asked) return;
  holding.asked = true;
  void Promise.resolve()
    .then(holding.requestRelease)
    .catch(() => {});
}

/**
 * A tus `Locker` on Redis: pass it as `locker` to `createTusIntake` (media-intake/tus) in every
 * process that serves the endpoint. Two processes never write one upload at once; a request for
 * an upload another process is writing asks that process to end its request (as a client that
 * resumes after a dropped connection needs), then takes the lock.
 *
 * @example
 * const locker = createRedisTusLocker({ connection: process.env.REDIS_URL! });
 * const tus = createTusIntake({ directories, client, locker });
 */
export function createRedisTusLocker(options: RedisTusLockerOptions): RedisTusLocker {
  const check = checkOptionsOf("createRedisTusLocker");
  check.known(options, ["connection", "prefix", "lockTtlMs", "acquireTimeoutMs"]);
  checkRedisConnection(check, options.connection);
  const prefix = options.prefix ?? "media-intake:tus-lock";
  const ttl = check.integer("lockTtlMs", options.lockTtlMs ?? 30_000, { min: MINIMUM.timeoutMs, unit: "ms" });
  const acquireTimeoutMs = check.integer("acquireTimeoutMs", options.acquireTimeoutMs ?? 30_000, { min: MINIMUM.timeoutMs, unit: "ms" });
  // The client, made as soon as ioredis is loaded: begun here, so that it connects from the start
  // as a client made at once would. A load that failed is tried again by the next call.
  const connect = onceSucceeded(async () => redisFrom(options.connection, await loadRedisClass()));
  connect().catch(() => {});
  const channels = { release: `${prefix}:release`, unlocked: `${prefix}:unlocked` };
  const keyOf = (id: string) => `${prefix}:${id}`;
  /**
   * One call to Redis, promptly: while Redis cannot be reached a request fails at once (or after
   * 5 s without an answer) with a `JournalUnavailableError`, a 503 at the edge, never a wait in
   * ioredis's offline queue. `call` is given the client (this locker's, or `client`). Without
   * ioredis installed, rejects with the error that says so.
   */
  const promptly = async <T>(doing: string, call: (redis: Redis) => Promise<T>, client?: Redis) =>
    callRedisPromptly(client ?? (await connect()).redis, DEFAULT_REDIS_TIMEOUT_MS, call, (cause) => new JournalUnavailableError(doing, `redis ${prefix}`, cause));

  /** Locks this process holds, by upload ID: whom to ask to let go. */
  const held = new Map<string, Holding>();
  /** Waiters of this process, by upload ID: woken when a holder anywhere unlocks it. */
  const waiters = new Map<string, Set<() => void>>();
  let subscriber: Redis | undefined;
  let subscribed: Promise<unknown> | undefined;
  // Never kept when it failed: the next request subscribes again, once Redis is back.
  const subscribe = () =>
    (subscribed ??= (async () => {
      const client = (await connect()).redis.duplicate();
      subscriber = client;
      client.on("error", () => {});
      client.on("message", (channel: string, id: string) => {
        if (channel === channels.release) {
          const holding = held.get(id);
          if (holding) askToRelease(holding);
        } else for (const wake of waiters.get(id) ?? []) wake();
      });
      try {
        await promptly("Subscribing to tus lock releases", () => client.subscribe(channels.release, channels.unlocked), client);
      } catch (error) {
        subscribed = undefined;
        subscriber = undefined;
        client.disconnect();
        throw error;
      }
    })());

  return {
    newLock(id: string): TusLock {
      const key = keyOf(id);
      const token = randomBytes(12).toString("hex");
      let renewal: NodeJS.Timeout | undefined;
      let holding: Holding | undefined;
      return {
        async lock(signal, requestRelease) {
          await subscribe();
          const deadline = Date.now() + acquireTimeoutMs;
          for (;;) {
            if (signal.aborted) throw await lockTimeout();
            // Listen before trying, so that an unlock between the try and the wait is not missed.
            let wake!: () => void;
            const woken = new Promise<void>((resolve) => (wake = resolve));
            const wakers = waiters.get(id) ?? new Set();
            waiters.set(id, wakers.add(wake));
            try {
              const set = await promptly(`Locking tus upload ${id}`, (redis) => redis.set(key, token, "PX", ttl, "NX")).catch((error: unknown) => {
                // Sent, and given up: it may still land once Redis answers; let go of it right after.
                if (!((error as Error).cause instanceof RedisDisconnectedError)) {
                  void connect()
                    .then(({ redis }) => redis.eval(RELEASE, 2, key, channels.unlocked, token, id))
                    .catch(() => {});
                }
                throw error;
              });
              if (set === "OK") {
                const taken: Holding = { requestRelease, asked: false };
                holding = taken;
                held.set(id, taken);
                renewal = setInterval(() => {
                  void promptly(`Renewing the lock of tus upload ${id}`, (redis) => redis.eval(RENEW, 1, key, token, String(ttl))).then(
                    (renewed) => {
                      // Lost (this process stalled past the TTL): stop writing at once.
                      if (renewed !== 1) askToRelease(taken);
                    },
                    () => {},
                  );
                }, Math.max(1, Math.floor(ttl / 3)));
                renewal.unref();
                return;
              }
              const left = deadline - Date.now();
              if (left <= 0) throw await lockTimeout();
              // Sent at each look (a message lost to a reconnection is sent again); the holder's
              // process asks the holder once.
              await promptly(`Asking the holder of tus upload ${id} to release it`, (redis) => redis.publish(channels.release, id));
              let timer: NodeJS.Timeout | undefined;
              const onAbort = () => wake();
              signal.addEventListener("abort", onAbort, { once: true });
              await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(RECHECK_MS, left))))]);
              clearTimeout(timer);
              signal.removeEventListener("abort", onAbort);
            } finally {
              wakers.delete(wake);
              if (wakers.size === 0) waiters.delete(id);
            }
          }
        },
        async unlock() {
          const mine = holding;
          if (!mine) throw new Error(`Releasing an unlocked lock: tus upload ${id} is not locked by this lock.`);
          holding = undefined;
          clearInterval(renewal);
          renewal = undefined;
          // Only this lock's own entry: a lock it lost may be held by a newer lock of this process.
          if (held.get(id) === mine) held.delete(id);
          // A lock this holder lost (to a TTL it outstalled) is another's now: it is left alone.
          // Redis unreachable: the key lapses after its TTL, and the request's own answer stands.
          await promptly(`Unlocking tus upload ${id}`, (redis) => redis.eval(RELEASE, 2, key, channels.unlocked, token, id)).catch((error: unknown) => {
            if (!(error instanceof JournalUnavailableError)) throw error;
          });
        },
      };
    },
    async close() {
      await subscribed?.catch(() => {});
      await subscriber?.quit().catch(() => {});
      // The client once made (or its load, when it fails again: nothing to close then).
      const made = await connect().catch(() => undefined);
      if (made?.ownClient) await made.redis.quit().catch(() => {});
    },
  };
}
