// Where issued challenges wait for their answer: single use (take removes), and expired ones are
// never handed out. The memory store serves one process; several hosts share the Redis store of
// media-intake/possession/redis (redis.ts: SET PX and GETDEL).
import type { KeptChallenge } from "./challenge.ts";

/** Where challenges wait for their answer. */
export interface ChallengeStore {
  /** Keeps `challenge` until it is taken or expires. */
  put(challenge: KeptChallenge): Promise<void>;
  /**
   * Removes the challenge and returns it, or `undefined` when there is none, it was taken
   * already, or it expired. Every verify attempt takes first, whatever its answer: a wrong answer
   * burns the challenge too.
   */
  take(id: string): Promise<KeptChallenge | undefined>;
}

/** Options of {@link createMemoryChallengeStore}. */
export interface MemoryChallengeStoreOptions {
  /** The clock, in milliseconds since the epoch; default Date.now. */
  now?: () => number;
}

/**
 * A challenge store in this process's memory. Expired challenges are dropped as new ones are
 * put (oldest first), so an idle flood of unanswered challenges lasts no longer than their TTL.
 */
export function createMemoryChallengeStore(options: MemoryChallengeStoreOptions = {}): ChallengeStore & { readonly size: number } {
  const { now = Date.now } = options;
  const challenges = new Map<string, KeptChallenge>();
  const dropExpired = (at: number) => {
    // Insertion order is expiry order when every challenge has the same TTL; one with a longer
    // TTL only delays the drop of those behind it, it never hands out an expired one.
    for (const [id, challenge] of challenges) {
      if (challenge.expiresAt > at) break;
      challenges.delete(id);
    }
  };
  return {
    get size() {
      return challenges.size;
    },
    async put(challenge) {
      dropExpired(now());
      challenges.set(challenge.id, challenge);
    },
    async take(id) {
      const challenge = challenges.get(id);
      if (challenge === undefined) return undefined;
      challenges.delete(id);
      return challenge.expiresAt > now() ? challenge : undefined;
    },
  };
}
