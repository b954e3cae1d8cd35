// The possession check (docs/possession.md): a client proves it holds a file's bytes before the
// service lets it skip the upload. The core (challenges, their store, the digest) and the
// server's check; the Redis challenge store is its own entry point (redis-entry.ts), so that the
// core loads no ioredis.
export { challengeRanges, type ChallengeSubject, DEFAULT_RANGE_BYTES, DEFAULT_RANGES, DEFAULT_TTL_MS, issueChallenge, type IssueChallengeOptions, type IssuedChallenge, type KeptChallenge } from "./challenge.ts";
export {
  createPossessionCheck,
  type PossessionAnswer,
  type PossessionCallOptions,
  type PossessionChallengeRequest,
  type PossessionCheck,
  type PossessionCheckOptions,
} from "./check.ts";
export { answerDigest, type ChallengeRange, type PossessionChallenge, type RangeReader } from "./digest.ts";
export { fileRangeReader } from "./file-range.ts";
export { type ChallengeStore, createMemoryChallengeStore, type MemoryChallengeStoreOptions } from "./store.ts";
