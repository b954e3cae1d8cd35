// The core of the possession check (docs/possession.md): the challenge's ranges, its randomness,
// single use and expiry in the memory store, and one digest for a file read and a buffer read.
import { createHash, randomBytes } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { answerDigest, type ChallengeRange, createMemoryChallengeStore, fileRangeReader, issueChallenge } from "../src/possession/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const subject = (size: number) => ({ userId: "user-1", mediaId: "6a9b7ce7844aa871", size });
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const bufferReader = (bytes: Uint8Array) => async (offset: number, length: number) => bytes.slice(offset, offset + length);

/** The digest computed independently, with node:crypto, as docs/possession.md defines it. */
function expectedDigest(nonce: string, ranges: ChallengeRange[], bytes: Uint8Array): string {
  const hash = createHash("sha256").update(Buffer.from(nonce, "base64url"));
  for (const { offset, length } of ranges) hash.update(bytes.subarray(offset, offset + length));
  return hash.digest("base64url");
}

describe("issueChallenge's ranges", () => {
  it.each([0, 1, 4095, 4096, 4097, 32 * 4096])("asks a file of %i bytes whole (no larger than the default 32 ranges)", (size) => {
    const { challenge } = issueChallenge(subject(size));
    expect(challenge.ranges).toEqual(size === 0 ? [] : [{ offset: 0, length: size }]);
  });

  it.each([32 * 4096 + 1, MiB, 5 * GiB, 2 ** 53 - 1])("samples a file of %i bytes with one 4 KiB range per 32nd, within bounds", (size) => {
    for (let draw = 0; draw < 50; draw += 1) {
      const { ranges } = issueChallenge(subject(size)).challenge;
      expect(ranges).toHaveLength(32);
      ranges.forEach(({ offset, length }, index) => {
        expect(length).toBe(4096);
        expect(Number.isSafeInteger(offset)).toBe(true);
        expect(offset).toBeGreaterThanOrEqual(Math.floor((index * size) / 32));
        expect(offset + length).toBeLessThanOrEqual(Math.floor(((index + 1) * size) / 32));
        expect(offset + length).toBeLessThanOrEqual(size);
      });
    }
  });

  it("reaches the very start and the very end of the file over many challenges", () => {
    const size = 5 * GiB;
    const stratum = size / 32;
    const draws = Array.from({ length: 200 }, () => issueChallenge(subject(size)).challenge.ranges);
    // Each first offset is uniform over its stratum: all 200 in its upper three quarters has odds (3/4)^200.
    expect(Math.min(...draws.map((ranges) => (ranges[0] as ChallengeRange).offset))).toBeLessThan(stratum / 4);
    expect(Math.max(...draws.map((ranges) => (ranges[31] as ChallengeRange).offset))).toBeGreaterThan(size - stratum / 4);
  });

  it("takes the number of ranges and their length as options", () => {
    const { ranges } = issueChallenge(subject(MiB), { ranges: 8, rangeBytes: 1024 }).challenge;
    expect(ranges).toHaveLength(8);
    expect(ranges.every(({ length }) => length === 1024)).toBe(true);
  });

  it("refuses an invalid size, option or unknown option", () => {
    expect(() => issueChallenge(subject(-1))).toThrow(TypeError);
    expect(() => issueChallenge(subject(1.5))).toThrow(TypeError);
    expect(() => issueChallenge({ ...subject(1), userId: "" })).toThrow(/userId/);
    expect(() => issueChallenge(subject(1), { ranges: 0 })).toThrow(/ranges/);
    expect(() => issueChallenge(subject(1), { ttl: 5 } as never)).toThrow(/Unknown option `ttl`/);
  });
});

describe("issueChallenge's challenge", () => {
  it("differs each time: ID, 128-bit nonce and offsets from a CSPRNG", () => {
    const [a, b] = [issueChallenge(subject(GiB)).challenge, issueChallenge(subject(GiB)).challenge];
    expect(Buffer.from(a.nonce, "base64url")).toHaveLength(16);
    expect(Buffer.from(a.id, "base64url")).toHaveLength(16);
    expect(a.id).not.toBe(b.id);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.ranges).not.toEqual(b.ranges);
  });

  it("expires ttlMs after now, and keeps what it is bound to for the server", () => {
    const { challenge, kept } = issueChallenge(subject(MiB), { ttlMs: 30_000, now: () => 1_000 });
    expect(challenge.expiresAt).toBe(31_000);
    expect(kept).toEqual({ ...challenge, userId: "user-1", mediaId: "6a9b7ce7844aa871", size: MiB });
    expect(Object.keys(challenge).sort()).toEqual(["expiresAt", "id", "nonce", "ranges"]);
  });
});

describe("the memory challenge store", () => {
  it("hands a challenge out once", async () => {
    const store = createMemoryChallengeStore();
    const { kept } = issueChallenge(subject(MiB));
    await store.put(kept);
    expect(await store.take(kept.id)).toEqual(kept);
    expect(await store.take(kept.id)).toBeUndefined();
    expect(await store.take("never-issued")).toBeUndefined();
  });

  it("never hands out an expired challenge, and drops it", async () => {
    let clock = 0;
    const now = () => clock;
    const store = createMemoryChallengeStore({ now });
    const { kept } = issueChallenge(subject(MiB), { ttlMs: 30_000, now });
    await store.put(kept);
    clock = 30_000;
    expect(await store.take(kept.id)).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it("answers until just before expiry", async () => {
    let clock = 0;
    const now = () => clock;
    const store = createMemoryChallengeStore({ now });
    const { kept } = issueChallenge(subject(MiB), { ttlMs: 30_000, now });
    await store.put(kept);
    clock = 29_999;
    expect(await store.take(kept.id)).toEqual(kept);
  });

  it("drops expired challenges as new ones come, so unanswered ones do not pile up", async () => {
    let clock = 0;
    const now = () => clock;
    const store = createMemoryChallengeStore({ now });
    for (let index = 0; index < 100; index += 1) await store.put(issueChallenge(subject(MiB), { now }).kept);
    clock = 30_000;
    await store.put(issueChallenge(subject(MiB), { now }).kept);
    expect(store.size).toBe(1);
  });
});

describe("answerDigest", () => {
  it("is the same for a file read through a FileHandle and for the bytes in memory, and is SHA-256(nonce || ranges)", async () => {
    const bytes = new Uint8Array(randomBytes(MiB + 123));
    const path = join(await makeTempDir(), "clip.mp4");
    await writeFile(path, bytes);
    const { challenge } = issueChallenge(subject(bytes.byteLength));
    const handle = await open(path, "r");
    try {
      const fromFile = await answerDigest(challenge, fileRangeReader(handle));
      expect(fromFile).toBe(await answerDigest(challenge, bufferReader(bytes)));
      expect(fromFile).toBe(expectedDigest(challenge.nonce, challenge.ranges, bytes));
      expect(fromFile).toMatch(/^[A-Za-z0-9_-]{43}$/);
    } finally {
      await handle.close();
    }
  });

  it("hashes a small file whole, and an empty one as the nonce alone", async () => {
    for (const size of [0, 1, 4095]) {
      const bytes = new Uint8Array(randomBytes(size));
      const { challenge } = issueChallenge(subject(size));
      expect(await answerDigest(challenge, bufferReader(bytes))).toBe(expectedDigest(challenge.nonce, [{ offset: 0, length: size }], bytes));
    }
  });

  it("changes with the nonce and with any byte inside a range", async () => {
    const bytes = new Uint8Array(randomBytes(MiB));
    const { challenge } = issueChallenge(subject(MiB));
    const digest = await answerDigest(challenge, bufferReader(bytes));
    const other = issueChallenge(subject(MiB)).challenge;
    expect(await answerDigest({ ...challenge, nonce: other.nonce }, bufferReader(bytes))).not.toBe(digest);
    const altered = bytes.slice();
    const last = challenge.ranges[31] as ChallengeRange;
    const at = last.offset + last.length - 1;
    altered[at] = (altered[at] as number) ^ 1;
    expect(await answerDigest(challenge, bufferReader(altered))).not.toBe(digest);
  });

  it("rejects when the file ends inside a range, or a reader gives too few bytes", async () => {
    const path = join(await makeTempDir(), "short.jpg");
    await writeFile(path, new Uint8Array(100));
    const handle = await open(path, "r");
    try {
      await expect(answerDigest({ nonce: "AAAAAAAAAAAAAAAAAAAAAA", ranges: [{ offset: 50, length: 100 }] }, fileRangeReader(handle))).rejects.toThrow(RangeError);
    } finally {
      await handle.close();
    }
    await expect(answerDigest({ nonce: "AAAAAAAAAAAAAAAAAAAAAA", ranges: [{ offset: 0, length: 10 }] }, async () => new Uint8Array(9))).rejects.toThrow(/9 bytes, 10 asked/);
  });
});
