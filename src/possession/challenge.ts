// Issuing a possession challenge (docs/possession.md "The challenge"): N ranges of rangeBytes, one
// at a random offset in each of N equal strata of the file (a CSPRNG's), or the whole file when it
// is no larger than the N ranges; a 128-bit nonce; an expiry; bound to the caller and the media ID.
import { randomBytes, randomInt } from "node:crypto";
import { rejectUnknownOptions } from "../utils/index.ts";
import { type ChallengeRange, type PossessionChallenge, toBase64url } from "./digest.ts";

export const DEFAULT_RANGES = 32;
export const DEFAULT_RANGE_BYTES = 4096;
export const DEFAULT_TTL_MS = 30_000;
/** The nonce's and the challenge ID's length: 128 bits. */
const RANDOM_BYTES = 16;
/** crypto.randomInt takes a span below 2^48: strata may be that wide (a 32-range 9 PiB file). */
const MAX_RANDOM_SPAN = 2 ** 48 - 1;

/** What a challenge is for. */
export interface ChallengeSubject {
  /** The caller's user ID (from their token): only they may answer. */
  userId: string;
  /** The media ID the caller asks about. */
  mediaId: string;
  /** The stored file's size in bytes. */
  size: number;
  /** The file name the caller gave, kept for the answer's record (its type and its name). */
  name?: string;
}

/** Options of {@link issueChallenge}. */
export interface IssueChallengeOptions {
  /** How many ranges (and strata); default 32. */
  ranges?: number;
  /** Each range's length; default 4096. */
  rangeBytes?: number;
  /** How long the challenge may be answered; default 30 000 ms. */
  ttlMs?: number;
  /** The clock, in milliseconds since the epoch; default Date.now. */
  now?: () => number;
}

/** What the server keeps until the answer comes: the challenge and what it is bound to. */
export interface KeptChallenge extends PossessionChallenge, ChallengeSubject {}

/** A new challenge: `challenge` goes to the caller, `kept` to the challenge store. */
export interface IssuedChallenge {
  challenge: PossessionChallenge;
  kept: KeptChallenge;
}

/**
 * Issues a single-use challenge for `subject`. Its ranges lie within [0, size), in file order,
 * one per stratum; a file of at most `ranges x rangeBytes` bytes is asked whole (one range; none
 * when empty).
 *
 * @throws {TypeError} a subject field or an option is invalid, or an option is unknown.
 */
export function issueChallenge(subject: ChallengeSubject, options: IssueChallengeOptions = {}): IssuedChallenge {
  rejectUnknownOptions(options, ["ranges", "rangeBytes", "ttlMs", "now"], "issueChallenge");
  const { ranges = DEFAULT_RANGES, rangeBytes = DEFAULT_RANGE_BYTES, ttlMs = DEFAULT_TTL_MS, now = Date.now } = options;
  const { userId, mediaId, size } = subject;
  if (typeof userId !== "string" || userId === "") throw new TypeError("issueChallenge: `userId` must be a non-empty string.");
  if (typeof mediaId !== "string" || mediaId === "") throw new TypeError("issueChallenge: `mediaId` must be a non-empty string.");
  if (!Number.isSafeInteger(size) || size < 0) throw new TypeError(`issueChallenge: \`size\` must be a non-negative safe integer, got ${String(size)}.`);
  if (subject.name !== undefined && typeof subject.name !== "string") throw new TypeError("issueChallenge: `name` must be a string when given.");
  checkInteger("ranges", ranges, 1, 1024);
  checkInteger("rangeBytes", rangeBytes, 1, 1024 * 1024);
  checkInteger("ttlMs", ttlMs, 1, 24 * 60 * 60 * 1000);
  const challenge: PossessionChallenge = {
    id: toBase64url(randomBytes(RANDOM_BYTES)),
    nonce: toBase64url(randomBytes(RANDOM_BYTES)),
    ranges: challengeRanges(size, ranges, rangeBytes),
    expiresAt: now() + ttlMs,
  };
  const name = subject.name === undefined ? {} : { name: subject.name };
  return { challenge, kept: { ...challenge, ranges: challenge.ranges.map((range) => ({ ...range })), userId, mediaId, size, ...name } };
}

/**
 * The ranges of a challenge on `size` bytes: the whole file when `size <= count x rangeBytes`,
 * else stratum i = [floor(i x size / count), floor((i + 1) x size / count)) holds one range at a
 * uniformly random offset that keeps it inside the stratum (each stratum is >= rangeBytes wide).
 */
export function challengeRanges(size: number, count: number, rangeBytes: number): ChallengeRange[] {
  if (size === 0) return [];
  if (size <= count * rangeBytes) return [{ offset: 0, length: size }];
  return Array.from({ length: count }, (_, index) => {
    const start = Math.floor((index * size) / count);
    const end = Math.floor(((index + 1) * size) / count);
    const span = end - start - rangeBytes + 1;
    return { offset: start + randomBelow(span), length: rangeBytes };
  });
}

/** A CSPRNG integer in [0, span), span <= 2^53. */
function randomBelow(span: number): number {
  if (span <= MAX_RANDOM_SPAN) return randomInt(span);
  // Wider than randomInt takes (a stratum past 256 TiB): 53 random bits, rejection keeps it uniform.
  const limit = Math.floor(2 ** 53 / span) * span;
  for (;;) {
    const bytes = randomBytes(8);
    const value = (bytes.readUInt32BE(0) & 0x1f_ffff) * 2 ** 32 + bytes.readUInt32BE(4);
    if (value < limit) return value % span;
  }
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new TypeError(`issueChallenge: option \`${name}\` must be an integer from ${min} to ${max}, got ${String(value)}.`);
  }
}
