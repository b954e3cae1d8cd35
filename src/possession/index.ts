// The possession check (docs/possession.md): a client proves it holds a file's bytes before the
// service lets it skip the upload. This slice is the core: challenges, their store, the digest.
export { challengeRanges, type ChallengeSubject, DEFAULT_RANGE_BYTES, DEFAULT_RANGES, DEFAULT_TTL_MS, issueChallenge, type IssueChallengeOptions, type IssuedChallenge, type KeptChallenge } from "./challenge.ts";
export { answerDigest, type ChallengeRange, type PossessionChallenge, type RangeReader } from "./digest.ts";
export { fileRangeReader } from "./file-range.ts";
export { type ChallengeStore, createMemoryChallengeStore, type MemoryChallengeStoreOptions } from "./store.ts";
