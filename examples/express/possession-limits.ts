// The possession routes' limits, in this process's memory (docs/possession.md "Limits"): a
// fixed window of challenges per user, and a cap on the refused answers per user and media ID.
// Each wrong answer needs a new challenge, so together they bound a partial holder's tries; with
// several processes each counts its own.

/** The window of the per-user limit of challenges. */
const MINUTE_MS = 60_000;
/** The window of the cap on refused answers per user and media ID. */
const HOUR_MS = 60 * MINUTE_MS;
/** Past this many users (or user and media ID pairs), ended windows are dropped, at most once a minute. */
const SWEEP_ABOVE = 10_000;

/**
 * A fixed window per user: the seconds to wait when `userId` asked for more than `limit`
 * challenges in the current minute, else `undefined`.
 */
export function perUserLimit(limit: number): (userId: string) => number | undefined {
  const windows = new Map<string, { start: number; count: number }>();
  let swept = 0;
  return (userId) => {
    const now = Date.now();
    if (windows.size > SWEEP_ABOVE && now - swept >= MINUTE_MS) {
      swept = now;
      for (const [key, window] of windows) if (now - window.start >= MINUTE_MS) windows.delete(key);
    }
    let window = windows.get(userId);
    if (!window || now - window.start >= MINUTE_MS) windows.set(userId, (window = { start: now, count: 0 }));
    window.count += 1;
    return window.count > limit ? Math.max(1, Math.ceil((window.start + MINUTE_MS - now) / 1000)) : undefined;
  };
}

/** The cap on refused answers per user and media ID; see {@link refusalCap}. */
export interface RefusalCap {
  /** The seconds to wait before `userId` gets another challenge for `mediaId`, or `undefined` when they may now. */
  waitFor(userId: string, mediaId: string): number | undefined;
  /** A challenge for `mediaId` issued here to `userId`: it counts until it is answered here or expires. */
  issued(userId: string, mediaId: string, challenge: { id: string; expiresAt: number }): void;
  /** An answer to `challengeId` came here, whatever its outcome: the challenge is burnt. */
  answered(challengeId: string): void;
  /** An answer of `userId` for `mediaId` was refused (here, whichever process issued its challenge). */
  refused(userId: string, mediaId: string): void;
}

interface Pair {
  /** When each refusal of the last hour came. */
  refusals: number[];
  /** The challenges issued here and not answered here yet, by ID: their expiry. */
  waiting: Map<string, number>;
}

/**
 * At most `limit` refused answers per user and media ID in a sliding hour, counting the
 * challenges issued for that pair and still unanswered (so that many challenges asked at once
 * cannot all be answered before the first refusal counts). Past it, `waitFor` gives the seconds
 * until one of them leaves the hour (or expires). A user with new content meets one refusal per
 * media ID before they upload, so the cap never stops them; and a 429 tells them to upload.
 */
export function refusalCap(limit: number): RefusalCap {
  const pairs = new Map<string, Pair>();
  const pairOfChallenge = new Map<string, string>();
  let swept = 0;
  const keyOf = (userId: string, mediaId: string) => `${userId}\n${mediaId.toLowerCase()}`;
  /** Drops what has expired from `pair` (and the pair when nothing is left); whether it is left. */
  const prune = (key: string, pair: Pair, now: number): boolean => {
    while (pair.refusals.length > 0 && (pair.refusals[0] as number) + HOUR_MS <= now) pair.refusals.shift();
    for (const [id, expiresAt] of pair.waiting) {
      if (expiresAt > now) continue;
      pair.waiting.delete(id);
      pairOfChallenge.delete(id);
    }
    if (pair.refusals.length > 0 || pair.waiting.size > 0) return true;
    pairs.delete(key);
    return false;
  };
  const pairFor = (key: string): Pair => {
    const now = Date.now();
    if (pairs.size > SWEEP_ABOVE && now - swept >= MINUTE_MS) {
      swept = now;
      for (const [other, pair] of pairs) prune(other, pair, now);
    }
    let pair = pairs.get(key);
    if (!pair) pairs.set(key, (pair = { refusals: [], waiting: new Map() }));
    return pair;
  };
  return {
    waitFor(userId, mediaId) {
      const key = keyOf(userId, mediaId);
      const pair = pairs.get(key);
      const now = Date.now();
      if (!pair || !prune(key, pair, now)) return undefined;
      const ends = [...pair.refusals.map((at) => at + HOUR_MS), ...pair.waiting.values()].sort((a, b) => a - b);
      if (ends.length < limit) return undefined;
      // Enough of them must end to leave room for one more.
      return Math.max(1, Math.ceil(((ends[ends.length - limit] as number) - now) / 1000));
    },
    issued(userId, mediaId, challenge) {
      const key = keyOf(userId, mediaId);
      pairFor(key).waiting.set(challenge.id, challenge.expiresAt);
      pairOfChallenge.set(challenge.id, key);
    },
    answered(challengeId) {
      const key = pairOfChallenge.get(challengeId);
      if (key === undefined) return;
      pairOfChallenge.delete(challengeId);
      const pair = pairs.get(key);
      pair?.waiting.delete(challengeId);
      if (pair) prune(key, pair, Date.now());
    },
    refused(userId, mediaId) {
      pairFor(keyOf(userId, mediaId)).refusals.push(Date.now());
    },
  };
}
