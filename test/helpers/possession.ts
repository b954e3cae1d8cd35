// What the possession tests share: media large enough to be sampled (its bytes close to random, as
// compressed media are), a client's answer over bytes it holds, and what an attacker who holds only
// the media ID's samples holds.
import { randomBytes } from "node:crypto";
import { pngChunk } from "../../examples/sample-media.ts";
import { answerDigest, type PossessionChallenge } from "../../src/index.ts";

/**
 * A PNG of about `size` bytes (over 128 KiB asks for sampled ranges), well formed to the
 * stand-in detector: a 1x1 image and an ancillary chunk of random bytes.
 */
export function noisyPng(size = 200 * 1024): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(1, 0);
  header.writeUInt32BE(1, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const image = pngChunk("IDAT", Buffer.from([0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    image,
    pngChunk("noIz", randomBytes(Math.max(0, size - 8 - 25 - image.length - 12 - 12))),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

/** The client's answer to `challenge` over `bytes` (what media-intake/browser computes over a Blob). */
export function digestOf(challenge: Pick<PossessionChallenge, "nonce" | "ranges">, bytes: Uint8Array): Promise<string> {
  return answerDigest(challenge, async (offset, length) => bytes.slice(offset, offset + length));
}

/** What one who knows only the media ID's input holds: the size and the first, middle and last KiB, zeros elsewhere. */
export function onlyTheSamples(bytes: Uint8Array): Uint8Array {
  const held = new Uint8Array(bytes.byteLength);
  for (const start of [0, Math.floor((bytes.byteLength - 1024) / 2), bytes.byteLength - 1024]) held.set(bytes.subarray(start, start + 1024), start);
  return held;
}

/** A random answer of the right form: 32 bytes, base64url. */
export const randomDigest = () => randomBytes(32).toString("base64url");
