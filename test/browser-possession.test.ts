// media-intake/browser's side of the possession check, run in Node against real files and a real
// HTTP service on loopback (helpers/possession-wire.ts: the wire format, built on the core): the
// browser's digest is the service's for the same bytes, a held file is skipped, a file of the same
// media ID but other bytes is not, and every other answer is an UploadRequestError in plain text.
import { openAsBlob } from "node:fs";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { answerPossessionChallenge, computeMediaId, MediaReadError, skipUploadIfStored, UploadRequestError } from "../src/browser/index.ts";
import { answerDigest, fileRangeReader, issueChallenge } from "../src/possession/index.ts";
import { lcg } from "./helpers/content.ts";
import { type PossessionWire, startPossessionWire } from "./helpers/possession-wire.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const MiB = 2 ** 20;
const token = "tok-alice-7f3e9c1d2b";
const fileOf = (bytes: Uint8Array, name: string) => new File([bytes as Uint8Array<ArrayBuffer>], name);

/** Real bytes on disk, as the service reads them, and the same file as a Blob, as a page has it. */
async function onDisk(bytes: Uint8Array): Promise<{ path: string; blob: Blob }> {
  const path = join(await makeTempDir(), "picked.mp4");
  await writeFile(path, bytes);
  return { path, blob: await openAsBlob(path) };
}

/** What the service computes for `challenge` on the file at `path`. */
async function servicesDigest(path: string, challenge: Parameters<typeof answerDigest>[0]): Promise<string> {
  const handle = await open(path, "r");
  try {
    return await answerDigest(challenge, fileRangeReader(handle));
  } finally {
    await handle.close();
  }
}

/** `bytes` with every byte flipped but the three KiB the media ID samples: the same ID, other content. */
function sameIdOtherBytes(bytes: Uint8Array): Uint8Array {
  const other = bytes.map((byte) => byte ^ 0xff);
  const middle = Math.floor((bytes.length - 1024) / 2);
  for (const start of [0, middle, bytes.length - 1024]) other.set(bytes.subarray(start, start + 1024), start);
  return other;
}

describe("answerPossessionChallenge", () => {
  it.each([0, 1000, 12 * 4096, 12 * 4096 + 1, 5 * MiB + 3])("gives the service's digest for a real file of %i bytes (a Blob from disk)", async (size) => {
    const { path, blob } = await onDisk(lcg(size));
    for (let draw = 0; draw < 3; draw += 1) {
      const { challenge } = issueChallenge({ userId: "alice", mediaId: "0123456789abcdef", size });
      expect(await answerPossessionChallenge(blob, challenge)).toBe(await servicesDigest(path, challenge));
    }
  });

  it("gives another digest for other bytes in a range, and another for another nonce", async () => {
    const bytes = lcg(200_000);
    const { challenge } = issueChallenge({ userId: "alice", mediaId: "0123456789abcdef", size: bytes.length });
    const changed = bytes.slice();
    const range = challenge.ranges[5] as { offset: number };
    changed[range.offset] = (changed[range.offset] as number) ^ 1;
    const digest = await answerPossessionChallenge(fileOf(bytes, "a.mp4"), challenge);
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await answerPossessionChallenge(fileOf(changed, "a.mp4"), challenge)).not.toBe(digest);
    const again = issueChallenge({ userId: "alice", mediaId: "0123456789abcdef", size: 1000 }).challenge;
    const small = fileOf(bytes.subarray(0, 1000), "a.mp4");
    expect(await answerPossessionChallenge(small, again)).not.toBe(await answerPossessionChallenge(small, { ...again, nonce: issueChallenge({ userId: "a", mediaId: "b", size: 1 }).challenge.nonce }));
  });

  it("refuses a range past the blob's end, a malformed challenge, what is not a Blob, and an unknown option", async () => {
    const blob = fileOf(lcg(1000), "a.mp4");
    const challenge = { id: "c1", nonce: "AAAAAAAAAAAAAAAAAAAAAA", ranges: [{ offset: 900, length: 200 }], expiresAt: Date.now() + 30_000 };
    await expect(answerPossessionChallenge(blob, challenge)).rejects.toThrow(RangeError);
    await expect(answerPossessionChallenge(blob, { ...challenge, ranges: [{ offset: -1, length: 1 }] })).rejects.toThrow(TypeError);
    await expect(answerPossessionChallenge(blob, { ...challenge, nonce: "not base64url!" })).rejects.toThrow(TypeError);
    await expect(answerPossessionChallenge(lcg(10) as unknown as Blob, challenge)).rejects.toThrow(TypeError);
    await expect(answerPossessionChallenge(blob, { ...challenge, ranges: [] }, { range: 1 } as never)).rejects.toThrow(/unknown option "range"/);
  });

  it("rejects with the signal's reason, and a File changed since it was picked is a MediaReadError", async () => {
    const { path, blob } = await onDisk(lcg(100_000));
    const { challenge } = issueChallenge({ userId: "alice", mediaId: "0123456789abcdef", size: 100_000 });
    const reason = new Error("another file picked");
    await expect(answerPossessionChallenge(blob, challenge, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await writeFile(path, lcg(100_001));
    await expect(answerPossessionChallenge(blob, challenge)).rejects.toBeInstanceOf(MediaReadError);
  });
});

describe("skipUploadIfStored against the wire format", () => {
  let wire: PossessionWire;
  beforeEach(async () => {
    wire = await startPossessionWire();
    wire.tokens.set(token, "alice");
  });
  afterEach(() => wire.close());

  it("skips a held file: a challenge for its ID, size and name, then the digest, then the service's 200 answer", async () => {
    const bytes = lcg(3 * MiB);
    const id = await wire.hold(bytes, "flight.mp4");
    const { blob } = await onDisk(bytes);
    const picked = new File([blob], "renamed copy.MP4");
    const result = await skipUploadIfStored(picked, { url: wire.url, token });
    expect(result).toEqual({ skipped: true, status: 200, body: { media: expect.objectContaining({ id, userId: "alice", created: false }), detections: [{ label: "held" }] } });
    expect(wire.seen.map(({ method, path }) => `${method} ${path}`)).toEqual(["POST /possession", expect.stringMatching(/^POST \/possession\/[A-Za-z0-9_-]{22}$/)]);
    expect(wire.seen[0]?.body).toEqual({ mediaId: id, size: bytes.length, name: "renamed copy.MP4" });
    expect(wire.seen[1]?.body).toEqual({ digest: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(wire.seen.every((request) => request.authorization === `Bearer ${token}`)).toBe(true);
  });

  it("skips with the 202 of a queued detection, its poll URL in the body", async () => {
    wire.mode = "queued";
    const bytes = lcg(100_000);
    const id = await wire.hold(bytes);
    const result = await skipUploadIfStored(fileOf(bytes, "a.mp4"), { url: wire.url, token });
    expect(result).toMatchObject({ skipped: true, status: 202, body: { media: { id }, detection: { state: "waiting", poll: `/detections/${id}` } } });
  });

  it("does not skip content the service lacks (403 after the challenge it still issues), nor a file of the same ID with other bytes", async () => {
    const bytes = lcg(2 * MiB);
    expect(await skipUploadIfStored(fileOf(bytes, "new.mp4"), { url: wire.url, token })).toEqual({ skipped: false });
    expect(wire.seen.map(({ method }) => method)).toEqual(["POST", "POST"]);
    await wire.hold(bytes);
    const forged = sameIdOtherBytes(bytes);
    expect(await computeMediaId(fileOf(forged, "x.mp4"))).toBe(await computeMediaId(fileOf(bytes, "x.mp4")));
    expect(await skipUploadIfStored(fileOf(forged, "forged.mp4"), { url: wire.url, token })).toEqual({ skipped: false });
    expect(await skipUploadIfStored(fileOf(bytes, "real.mp4"), { url: wire.url, token })).toMatchObject({ skipped: true });
  });

  it("takes the media ID and the name it is given, and refuses a nameless Blob and unknown options", async () => {
    const bytes = lcg(5000);
    const id = await wire.hold(bytes);
    const blob = new Blob([bytes as Uint8Array<ArrayBuffer>]);
    expect(await skipUploadIfStored(blob, { url: wire.url, token, mediaId: id, name: "clip.mp4" })).toMatchObject({ skipped: true });
    expect(wire.seen[0]?.body).toEqual({ mediaId: id, size: 5000, name: "clip.mp4" });
    expect(await skipUploadIfStored(blob, { url: wire.url, token, mediaId: "0000000000000000", name: "clip.mp4" })).toEqual({ skipped: false });
    expect(wire.seen[2]?.body).toMatchObject({ mediaId: "0000000000000000" });
    await expect(skipUploadIfStored(blob, { url: wire.url, token })).rejects.toThrow(/pass `name`/);
    await expect(skipUploadIfStored(blob, { url: wire.url, token, name: "a.mp4", retries: 1 } as never)).rejects.toThrow(/unknown option "retries"/);
    await expect(skipUploadIfStored(blob, { url: wire.url, name: "a.mp4" } as never)).rejects.toThrow(/`token`/);
  });

  /** The UploadRequestError a check of `file` gets, after asserting it never shows the token. */
  async function refused(file: Blob, options: Partial<Parameters<typeof skipUploadIfStored>[1]> = {}): Promise<UploadRequestError> {
    const error = await skipUploadIfStored(file, { url: wire.url, token, ...options }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UploadRequestError);
    const refusal = error as UploadRequestError;
    expect(refusal.text).toBe(refusal.message);
    for (const shown of [refusal.text, refusal.message, String(refusal.stack)]) expect(shown).not.toContain(options.token ?? token);
    return refusal;
  }

  it("a refused token: 401, in plain text, without the token", async () => {
    const error = await refused(fileOf(lcg(10), "a.mp4"), { token: "tok-expired-0a1b2c3d4e" });
    expect(error).toMatchObject({ status: 401, code: "UPLOAD_REQUEST_FAILED", serverCode: "AUTH_TOKEN_INVALID", text: "Not signed in, or the token was refused: sign in again." });
    expect(wire.seen).toHaveLength(1);
  });

  it("too large: 413 with the service's limit; a type it takes not: 415 with the type; a 5xx: unavailable", async () => {
    wire.maxBytes = 1 * MiB;
    expect(await refused(fileOf(lcg(MiB + 1), "big.mp4"))).toMatchObject({ status: 413, text: "The file is too large. The upload is over the limit of 1 MiB (1048576 bytes)." });
    expect(await refused(fileOf(lcg(10), "notes.TXT"))).toMatchObject({
      status: 415,
      serverCode: "UNSUPPORTED_MEDIA_TYPE",
      text: 'This type of file is not accepted (.txt files). Resolving the media type of "notes.TXT": unsupported extension ".txt".',
    });
    wire.fault = (req, res) => {
      if (req.method !== "POST" || !req.url?.startsWith("/possession/")) return false;
      res.writeHead(503, { "content-type": "application/json", "retry-after": "5" }).end(JSON.stringify({ error: { code: "ANNOTATIONS_UNAVAILABLE", message: `down for ${token}` } }));
      return true;
    };
    expect(await refused(fileOf(lcg(10), "a.mp4"))).toMatchObject({ status: 503, serverCode: "ANNOTATIONS_UNAVAILABLE", text: "The service is unavailable, try again later." });
  });

  it("a service that echoes the token in a 4xx message: the token is never shown", async () => {
    wire.fault = (_, res) => {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "BAD_REQUEST", message: `bad token ${token}` } }));
      return true;
    };
    expect(await refused(fileOf(lcg(10), "a.mp4"))).toMatchObject({ status: 400, text: "The service refused the request. Bad token [token]." });
  });

  it("a service that echoes pieces of a JWT (cut inside it, a fragment, one part, the Bearer form): none of its header, claims or signature is shown", async () => {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const [header, claims] = [part({ alg: "HS256", typ: "JWT" }), part({ sub: "alice", email: "alice@example.com", exp: 1_900_000_000 })];
    const signature = "kD3m9Qx7LrT2vB8nYw4ZpHc1sJfA6eUoGiN0tR5yXqM";
    const jwt = `${header}.${claims}.${signature}`;
    const echoes = [
      // Cut by the service inside the signature, the claims, the header.
      `${"x".repeat(250)} token=${jwt}`.slice(0, 250 + 7 + header.length + claims.length + 12),
      `${"x".repeat(250)} token=${jwt}`.slice(0, 250 + 7 + header.length + 20),
      `${"x".repeat(280)} token=${jwt}`,
      `fragment ${jwt.slice(10, 60)} seen`,
      `claims ${claims} refused`,
      `signature ${signature} refused`,
      `header was "Authorization: Bearer ${jwt}"`,
    ];
    for (const message of echoes) {
      wire.fault = (_, res) => {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "BAD_REQUEST", message } }));
        return true;
      };
      const error = await refused(fileOf(lcg(10), "a.mp4"), { token: jwt });
      expect(error.text).toMatch(/^The service refused the request\. /);
      for (const shown of [error.text, String(error.stack)]) {
        for (let at = 0; at + 8 <= jwt.length; at += 1) expect(shown).not.toContain(jwt.slice(at, at + 8));
      }
    }
    wire.fault = undefined;
  });

  it("no answer (nothing listens): status 0; a forged challenge past the file's end is refused, nothing read past it", async () => {
    const url = wire.url;
    await wire.close();
    expect(await skipUploadIfStored(fileOf(lcg(10), "a.mp4"), { url, token }).catch((error: unknown) => error)).toMatchObject({
      status: 0,
      text: "The service could not be reached; check the connection and try again.",
    });
    wire = await startPossessionWire();
    wire.tokens.set(token, "alice");
    wire.fault = (req, res) => {
      if (req.url !== "/possession") return false;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ challenge: { id: "x", nonce: "AAAAAAAAAAAAAAAAAAAAAA", ranges: [{ offset: 0, length: 11 }], expiresAt: 0 } }));
      return true;
    };
    const error = await refused(fileOf(lcg(10), "a.mp4"));
    expect(error).toMatchObject({ status: 200, text: "The service answered something else than a challenge for this file; try again later." });
    expect(error.cause).toBeInstanceOf(RangeError);
    expect(wire.seen).toHaveLength(1);
  });

  it("rejects with the signal's reason while the service has not answered", async () => {
    let asked!: () => void;
    const stalled = new Promise<void>((resolve) => (asked = resolve));
    wire.fault = () => (asked(), true); // never answers
    const controller = new AbortController();
    const pending = skipUploadIfStored(fileOf(lcg(10), "a.mp4"), { url: wire.url, token, signal: controller.signal });
    await stalled;
    const reason = new Error("the user left");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("uses the fetch it is given", async () => {
    const bytes = lcg(5000);
    await wire.hold(bytes);
    const called: string[] = [];
    const fetched: typeof fetch = (input, init) => {
      called.push(String(input));
      return fetch(input, init);
    };
    expect(await skipUploadIfStored(fileOf(bytes, "a.mp4"), { url: wire.url, token, fetch: fetched })).toMatchObject({ skipped: true });
    expect(called).toEqual([wire.url, expect.stringMatching(new RegExp(`^${wire.url}/`))]);
  });
});
