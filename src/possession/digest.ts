// The answer to a possession challenge (docs/possession.md "The digest"): SHA-256 over the nonce's
// 16 bytes, then each range's bytes in the challenge's order, as base64url without padding.
// Nothing of Node here: the server reads its file through a FileHandle, the browser entry reads a
// Blob's slices, and both hash with WebCrypto (globalThis.crypto.subtle, in Node and in browsers).

/** One byte range of a challenge: `length` bytes from `offset`. */
export interface ChallengeRange {
  offset: number;
  length: number;
}

/** What the client is sent: which ranges to read, and the nonce to hash first. */
export interface PossessionChallenge {
  /** The challenge's ID, to send back with the answer. */
  id: string;
  /** 128 random bits, base64url. */
  nonce: string;
  /** The ranges to read, in the order their bytes are hashed. */
  ranges: ChallengeRange[];
  /** When the challenge stops being answerable, in milliseconds since the epoch. */
  expiresAt: number;
}

/** Reads exactly `length` bytes from `offset` (a short read must reject, not return fewer). */
export type RangeReader = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * The answer to a challenge: base64url(SHA-256(nonce bytes || bytes of range 1 || ... || range N)).
 * The ranges are read at once; the hash input is at most N x rangeBytes plus 16 bytes.
 *
 * @throws {RangeError} `readRange` returned a buffer of another length than asked.
 */
export async function answerDigest(challenge: Pick<PossessionChallenge, "nonce" | "ranges">, readRange: RangeReader): Promise<string> {
  const nonce = fromBase64url(challenge.nonce);
  const parts = await Promise.all(challenge.ranges.map(({ offset, length }) => readRange(offset, length)));
  const total = parts.reduce((sum, part) => sum + part.byteLength, nonce.byteLength);
  const input = new Uint8Array(total);
  input.set(nonce, 0);
  let at = nonce.byteLength;
  parts.forEach((part, index) => {
    const asked = (challenge.ranges[index] as ChallengeRange).length;
    if (part.byteLength !== asked) throw new RangeError(`answerDigest: range ${index} gave ${part.byteLength} bytes, ${asked} asked.`);
    input.set(part, at);
    at += part.byteLength;
  });
  return toBase64url(new Uint8Array(await crypto.subtle.digest("SHA-256", input)));
}

/** base64url without padding (RFC 4648 section 5), with btoa: in Node and in browsers. */
export function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of a base64url string (padding optional). @throws {TypeError} not base64url. */
export function fromBase64url(text: string): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new TypeError("Expected a base64url string.");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}
