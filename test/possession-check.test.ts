// createPossessionCheck against real files in a temp dir and the dev annotations server: a verified
// answer is an upload of those bytes by that caller (the same IntakenMedia as intakeMedia's), and
// every refusal (replayed, another user's, the ID alone, wrong ranges, expired, content not held,
// another size) is one PossessionNotProvenError that creates nothing: no record, no journal entry,
// no file.
import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AuthTokenError,
  type ChallengeStore,
  computeMediaId,
  createAnnotationsClient,
  createMemoryChallengeStore,
  createPossessionCheck,
  fileJournalFor,
  httpErrorFor,
  intakeMedia,
  type JournalEntry,
  type MediaJournal,
  type PossessionCheckOptions,
  PossessionNotProvenError,
  storeMedia,
} from "../src/index.ts";
import { useDevFixture, signToken } from "./helpers/fixture.ts";
import { pointOf, registerInMemorySdk } from "./helpers/otel.ts";
import { digestOf, noisyPng, onlyTheSamples, randomDigest } from "./helpers/possession.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "possession-check-secret-0123456789ab";
const fixture = useDevFixture({ secret });
let bob: string;
let adds: JournalEntry[];
let journal: MediaJournal;

let sdk: ReturnType<typeof registerInMemorySdk>;
beforeAll(() => {
  sdk = registerInMemorySdk();
});
afterAll(() => sdk.shutdown());

beforeEach(async () => {
  bob = await signToken("bob", secret, "5m");
  adds = [];
  // The directories' own file journal, its adds seen: a refusal must add nothing.
  const real = fileJournalFor(fixture.directories);
  journal = { ...real, location: real.location, add: (entry) => (adds.push(entry), real.add(entry)) };
  sdk.spans.reset();
  await sdk.resetMetrics();
});

const client = () => createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.serviceToken });
const check = (options: Partial<PossessionCheckOptions> = {}) => createPossessionCheck({ directories: fixture.directories, client: client(), auth: { verify: { secret } }, journal, ...options });

/** Alice's upload of `bytes` as `name`, through intakeMedia. */
const upload = (bytes: Uint8Array, name = "alice-private.png", token = fixture.token) =>
  intakeMedia(Buffer.from(bytes), { originalName: name, token, client: client(), auth: { verify: { secret } }, directories: fixture.directories, journal });

/** The storage folders (the file journal's included), the records of `ids` and the journal adds: all a refusal must leave as it was. */
async function state(...ids: string[]) {
  const records = await Promise.all(ids.map((id) => client().media.get(id).then((record) => record, (error: { code?: string }) => error.code)));
  return { images: await filesUnder(fixture.directories.imagesDir), videos: await filesUnder(fixture.directories.videosDir), records, adds: adds.length, journal: await journal.list() };
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PossessionNotProvenError);
  expect(error).toMatchObject({ code: "POSSESSION_NOT_PROVEN", message: "The possession of the content was not proven; upload the file." });
  return error;
}

describe("a verified answer", () => {
  it("is an upload of those bytes by the caller: the very IntakenMedia intakeMedia gives, no file added, no journal entry left", async () => {
    const png = noisyPng();
    const first = await upload(png);
    const possession = check();
    const challenge = await possession.challenge({ token: fixture.token, mediaId: first.id, size: png.length, name: "again.png" });
    expect(challenge.ranges).toHaveLength(32);
    const files = await filesUnder(fixture.directories.imagesDir);
    const verified = await possession.verify({ token: fixture.token, challengeId: challenge.id, digest: await digestOf(challenge, png) });
    expect(await filesUnder(fixture.directories.imagesDir)).toEqual(files);
    const uploaded = await upload(png, "again.png");
    expect(verified).toEqual(uploaded);
    expect(verified).toMatchObject({ id: first.id, userId: "alice", name: "alice-private.png", created: false, fileCreated: false, size: png.length, file: first.path, detected: { mediaType: 2 } });
    expect(Object.isFrozen(verified)).toBe(true);
    // Journaled as an upload is, then settled: one entry added, none left.
    expect(adds.filter((entry) => entry.kind === "intake")).toHaveLength(3);
    expect(await journal.list()).toEqual([]);
  });

  it("creates the record when the file is stored but has none, as an upload of it would: the caller's", async () => {
    const png = noisyPng(60 * 1024);
    // Stored without a record (another deployment's folder, or a record the service lost).
    const stored = await storeMedia(png, { originalName: "kept.png", directories: fixture.directories });
    expect(await state(stored.id)).toMatchObject({ records: ["MEDIA_NOT_FOUND"] });
    const possession = check();
    const challenge = await possession.challenge({ token: bob, mediaId: stored.id, size: png.length, name: "bob.png" });
    const verified = await possession.verify({ token: bob, challengeId: challenge.id, digest: await digestOf(challenge, png) });
    expect(verified).toMatchObject({ id: stored.id, userId: "bob", name: "bob.png", path: stored.path, mediaStatus: 1, created: true, fileCreated: false, size: png.length });
    expect(await client().media.get(stored.id)).toMatchObject({ userId: "bob", path: stored.path });
    expect(await journal.list()).toEqual([]);
  });

  it("finds the content stored under a sibling extension of its type, and under a custom naming", async () => {
    const png = noisyPng(70 * 1024);
    const stored = await upload(png, "photo.png");
    // JPEG bytes stored as `.jpg`, asked for as `.JPEG`: found where the store finds that duplicate.
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(60 * 1024), Buffer.from([0xff, 0xd9])]);
    const jpg = await upload(jpeg, "scan.jpg");
    expect(jpg.path.endsWith(".jpg")).toBe(true);
    const sibling = check();
    const asked = await sibling.challenge({ token: bob, mediaId: jpg.id, size: jpeg.length, name: "scan.JPEG" });
    expect(await sibling.verify({ token: bob, challengeId: asked.id, digest: await digestOf(asked, jpeg) })).toMatchObject({ id: jpg.id, path: jpg.path, file: jpg.path, fileCreated: false });
    // Moved to where a `naming` would put it: found there only by a check given that naming.
    const naming = ({ id, extension }: { id: string; extension: string }) => `${id.slice(0, 2)}/${id}${extension}`;
    const named = join(fixture.directories.imagesDir, naming({ id: stored.id, extension: ".png" }));
    await mkdir(join(fixture.directories.imagesDir, stored.id.slice(0, 2)));
    await rename(stored.path, named);
    const answer = async (possession: ReturnType<typeof check>, token = fixture.token) => {
      const challenge = await possession.challenge({ token, mediaId: stored.id, size: png.length, name: "Photo.PNG" });
      return possession.verify({ token, challengeId: challenge.id, digest: await digestOf(challenge, png) });
    };
    await refusal(answer(check()));
    const verified = await answer(check({ naming }));
    expect(verified).toMatchObject({ id: stored.id, created: false, fileCreated: false, file: named });
  });

  it("is counted as the intake counts uploads: media_intake.intake=possession, its span with it", async () => {
    const png = noisyPng(50 * 1024);
    const stored = await upload(png);
    await sdk.resetMetrics();
    const possession = check();
    const challenge = await possession.challenge({ token: fixture.token, mediaId: stored.id, size: png.length, name: "a.png" });
    await possession.verify({ token: fixture.token, challengeId: challenge.id, digest: await digestOf(challenge, png) });
    await refusal(possession.verify({ token: fixture.token, challengeId: challenge.id, digest: await digestOf(challenge, png) }));
    const points = await sdk.collect();
    expect(pointOf(points, "media_intake.uploads", { "media_intake.outcome": "duplicate", "media_intake.intake": "possession" })).toBe(1);
    expect(pointOf(points, "media_intake.uploads", { "media_intake.outcome": "refused", "media_intake.intake": "possession" })).toBe(1);
    const span = await sdk.spans.waitFor((s) => s.name === "media_intake.intake" && s.attributes["media_intake.intake"] === "possession");
    expect(span.attributes).toMatchObject({ "media_intake.outcome": "duplicate", "media_intake.media_id": stored.id });
  });
});

describe("every refusal: one PossessionNotProvenError, and nothing created", () => {
  it("a replayed answer, another user's challenge, the ID alone, a random digest, wrong ranges", async () => {
    const png = noisyPng();
    const stored = await upload(png);
    const possession = check();
    const ask = (token = fixture.token) => possession.challenge({ token, mediaId: stored.id, size: png.length, name: "x.png" });
    const before = await state(stored.id);
    // Replayed: the first answer is taken, the same one again is refused.
    const once = await ask();
    const digest = await digestOf(once, png);
    await possession.verify({ token: fixture.token, challengeId: once.id, digest });
    const after = await state(stored.id);
    await refusal(possession.verify({ token: fixture.token, challengeId: once.id, digest }));
    // Another user's challenge, answered right: refused, and burnt for its owner too.
    const alices = await ask();
    await refusal(possession.verify({ token: bob, challengeId: alices.id, digest: await digestOf(alices, png) }));
    await refusal(possession.verify({ token: fixture.token, challengeId: alices.id, digest: await digestOf(alices, png) }));
    // The ID alone: the size and the three sampled KiB, the rest unknown.
    const idOnly = await ask(bob);
    await refusal(possession.verify({ token: bob, challengeId: idOnly.id, digest: await digestOf(idOnly, onlyTheSamples(png)) }));
    // A random digest burns the challenge: the right answer after it is refused.
    const guessed = await ask(bob);
    await refusal(possession.verify({ token: bob, challengeId: guessed.id, digest: randomDigest() }));
    await refusal(possession.verify({ token: bob, challengeId: guessed.id, digest: await digestOf(guessed, png) }));
    // Other ranges than the challenge's (each one byte further on).
    const shifted = await ask(bob);
    const wrong = { ...shifted, ranges: shifted.ranges.map(({ offset, length }) => ({ offset: offset + 1, length })) };
    await refusal(possession.verify({ token: bob, challengeId: shifted.id, digest: await digestOf(wrong, png) }));
    // Not an answer at all, and a challenge ID no store has.
    const malformed = await ask(bob);
    await refusal(possession.verify({ token: bob, challengeId: malformed.id, digest: 42 as never }));
    await refusal(possession.verify({ token: bob, challengeId: "../../etc", digest: await digestOf(malformed, png) }));
    await refusal(possession.verify({ token: bob, challengeId: "x".repeat(500), digest: randomDigest() }));
    expect(await state(stored.id)).toEqual(after);
    expect(after.images).toEqual(before.images);
  });

  it("content not held, a held file of another size, the digest of zeros: refused alike", async () => {
    const png = noisyPng();
    const stored = await upload(png);
    const possession = check();
    const absent = noisyPng();
    const absentId = await computeMediaId(absent);
    const before = await state(stored.id, absentId);
    expect(before.records[1]).toBe("MEDIA_NOT_FOUND");
    // A challenge is issued all the same, of the same form as for held content of that size.
    const notHeld = await possession.challenge({ token: bob, mediaId: absentId, size: absent.length, name: "new.png" });
    const held = await possession.challenge({ token: bob, mediaId: stored.id, size: png.length, name: "new.png" });
    expect(Object.keys(notHeld).sort()).toEqual(Object.keys(held).sort());
    expect(notHeld.ranges.map(({ length }) => length)).toEqual(held.ranges.map(({ length }) => length));
    await refusal(possession.verify({ token: bob, challengeId: notHeld.id, digest: await digestOf(notHeld, absent) }));
    // What the service hashes for content it lacks is never an answer.
    const zeros = await possession.challenge({ token: bob, mediaId: absentId, size: absent.length, name: "new.png" });
    await refusal(possession.verify({ token: bob, challengeId: zeros.id, digest: await digestOf(zeros, new Uint8Array(absent.length)) }));
    // The stored ID, declared one byte shorter: the ranges fit in the stored file, its bytes answer them, its size does not.
    const shorter = await possession.challenge({ token: bob, mediaId: stored.id, size: png.length - 1, name: "new.png" });
    await refusal(possession.verify({ token: bob, challengeId: shorter.id, digest: await digestOf(shorter, png) }));
    // Named as another type: looked for among videos, where it is not.
    const video = await possession.challenge({ token: bob, mediaId: stored.id, size: png.length, name: "new.mp4" });
    await refusal(possession.verify({ token: bob, challengeId: video.id, digest: await digestOf(video, png) }));
    expect(await state(stored.id, absentId)).toEqual(before);
  });

  it("a held file whose bytes are not what its name says (stored without the content check): an upload so named is refused, so is the answer", async () => {
    const noise = randomBytes(60 * 1024);
    const stored = await storeMedia(noise, { originalName: "noise.png", directories: fixture.directories, verify: "off" });
    const before = await state(stored.id);
    const possession = check();
    const challenge = await possession.challenge({ token: bob, mediaId: stored.id, size: noise.length, name: "noise.png" });
    await refusal(possession.verify({ token: bob, challengeId: challenge.id, digest: await digestOf(challenge, noise) }));
    expect(await state(stored.id)).toEqual(before);
  });

  it("a file retired between its check and its journal entry: refused, the entry taken back, no record", async () => {
    const png = noisyPng(60 * 1024);
    const stored = await storeMedia(png, { originalName: "kept.png", directories: fixture.directories });
    // The journal entry's add is the moment another upload's cleanup could have retired the file.
    const retiring: MediaJournal = { ...journal, location: journal.location, add: async (entry) => (await rename(stored.path, `${stored.path}.retired`), journal.add(entry)) };
    const possession = check({ journal: retiring });
    const challenge = await possession.challenge({ token: bob, mediaId: stored.id, size: png.length, name: "kept.png" });
    await refusal(possession.verify({ token: bob, challengeId: challenge.id, digest: await digestOf(challenge, png) }));
    expect(await journal.list()).toEqual([]);
    expect((await state(stored.id)).records).toEqual(["MEDIA_NOT_FOUND"]);
  });

  it("an expired challenge, whether the store drops it or hands it out", async () => {
    const png = noisyPng(60 * 1024);
    const stored = await upload(png);
    const before = await state(stored.id);
    let now = Date.now();
    const possession = check({ store: createMemoryChallengeStore({ now: () => now }) });
    const challenge = await possession.challenge({ token: fixture.token, mediaId: stored.id, size: png.length, name: "a.png" });
    now = challenge.expiresAt;
    await refusal(possession.verify({ token: fixture.token, challengeId: challenge.id, digest: await digestOf(challenge, png) }));
    // A store that keeps expired challenges: the check looks at the expiry itself.
    const kept = new Map<string, Parameters<ChallengeStore["put"]>[0]>();
    const lax: ChallengeStore = {
      put: async (entry) => void kept.set(entry.id, { ...entry, expiresAt: Date.now() - 1 }),
      take: async (id) => kept.get(id),
    };
    const laxCheck = check({ store: lax });
    const stale = await laxCheck.challenge({ token: fixture.token, mediaId: stored.id, size: png.length, name: "a.png" });
    await refusal(laxCheck.verify({ token: fixture.token, challengeId: stale.id, digest: await digestOf(stale, png) }));
    expect(await state(stored.id)).toEqual(before);
  });
});

describe("a refusal's time and its media ID", () => {
  /** How long `call` takes to settle, in ms, and what it rejected with. */
  async function timed(call: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
    const start = performance.now();
    const error = await call().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    return { ms: performance.now() - start, error };
  }

  it("rejects no sooner than refusalFloorMs after the call, for content held or not (100 ms by default, 0 turns it off); a verified answer is not held back", async () => {
    const png = noisyPng();
    const stored = await upload(png);
    const absent = noisyPng();
    const absentId = await computeMediaId(absent);
    const refused = async (possession: ReturnType<typeof check>, mediaId: string, size: number) => {
      const challenge = await possession.challenge({ token: bob, mediaId, size, name: "x.png" });
      const { ms, error } = await timed(() => possession.verify({ token: bob, challengeId: challenge.id, digest: randomDigest() }));
      await refusal(Promise.reject(error));
      return ms;
    };
    const floored = check({ refusalFloorMs: 400 });
    for (const [id, size] of [[stored.id, png.length], [absentId, absent.length]] as const) expect(await refused(floored, id, size)).toBeGreaterThanOrEqual(400);
    // An answer that is not even for a challenge: held alike.
    expect((await timed(() => floored.verify({ token: bob, challengeId: "AAAAAAAAAAAAAAAAAAAAAA", digest: randomDigest() }))).ms).toBeGreaterThanOrEqual(400);
    expect(await refused(check(), absentId, absent.length)).toBeGreaterThanOrEqual(100);
    expect(await refused(check({ refusalFloorMs: 0 }), absentId, absent.length)).toBeLessThan(400);
    // A verified answer resolves as soon as it is verified: a floor of a minute would time the test out.
    const long = check({ refusalFloorMs: 60_000 });
    const challenge = await long.challenge({ token: bob, mediaId: stored.id, size: png.length, name: "x.png" });
    const digest = await digestOf(challenge, png);
    const verified = await timed(() => long.verify({ token: bob, challengeId: challenge.id, digest }));
    expect(verified).toMatchObject({ error: undefined });
    expect(verified.ms).toBeLessThan(10_000);
  });

  it("names the media ID of a refused challenge issued to the caller, and none for one that was not theirs", async () => {
    const png = noisyPng(60 * 1024);
    const stored = await upload(png);
    const possession = check({ refusalFloorMs: 0 });
    const ask = (token: string) => possession.challenge({ token, mediaId: stored.id.toUpperCase(), size: png.length, name: "x.png" });
    const wrong = await ask(bob);
    const refused = await refusal(possession.verify({ token: bob, challengeId: wrong.id, digest: randomDigest() }));
    expect(refused).toMatchObject({ mediaId: stored.id });
    const alices = await ask(fixture.token);
    expect(await refusal(possession.verify({ token: bob, challengeId: alices.id, digest: await digestOf(alices, png) }))).toMatchObject({ mediaId: undefined });
    expect(await refusal(possession.verify({ token: bob, challengeId: wrong.id, digest: randomDigest() }))).toMatchObject({ mediaId: undefined });
    // Not in what a client is answered: the answer is the one of every refusal.
    expect(httpErrorFor(refused)).toEqual(httpErrorFor(new PossessionNotProvenError()));
  });
});

describe("the requests refused before anything", () => {
  it("challenge: a bad token (401), a malformed ID or size (400), a type not supported (415), over maxBytes (413): nothing kept", async () => {
    const store = createMemoryChallengeStore();
    const possession = check({ store, maxBytes: 1000 });
    const request = { token: fixture.token, mediaId: "6a9b7ce7844aa871", size: 10, name: "a.png" };
    await expect(possession.challenge({ ...request, token: "nope" })).rejects.toBeInstanceOf(AuthTokenError);
    await expect(possession.challenge({ ...request, token: undefined })).rejects.toMatchObject({ code: "AUTH_TOKEN_INVALID" });
    await expect(possession.challenge({ ...request, mediaId: "V6a9b7ce7844aa871" })).rejects.toMatchObject({ code: "INVALID_MEDIA_ID" });
    for (const size of [-1, 1.5, "10", Number.NaN, 2 ** 53]) {
      await expect(possession.challenge({ ...request, size: size as number })).rejects.toMatchObject({ code: "INVALID_MEDIA_SIZE", name: "InvalidMediaSizeError" });
    }
    await expect(possession.challenge({ ...request, name: "a.exe" })).rejects.toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE" });
    await expect(possession.challenge({ ...request, name: undefined as never })).rejects.toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE" });
    await expect(possession.challenge({ ...request, size: 1001 })).rejects.toMatchObject({ code: "MEDIA_TOO_LARGE", maxBytes: 1000 });
    const aborted = AbortSignal.abort(new Error("gone"));
    await expect(possession.challenge(request, { signal: aborted })).rejects.toThrow("gone");
    expect(store.size).toBe(0);
    await possession.challenge({ ...request, size: 1000, mediaId: "6A9B7CE7844AA871" });
    expect(store.size).toBe(1);
  });

  it("verify: a bad token is refused before the challenge is taken; an aborted call rejects with its reason", async () => {
    const png = noisyPng(60 * 1024);
    const stored = await upload(png);
    const possession = check();
    const challenge = await possession.challenge({ token: fixture.token, mediaId: stored.id, size: png.length, name: "a.png" });
    const digest = await digestOf(challenge, png);
    await expect(possession.verify({ token: "Bearer nope", challengeId: challenge.id, digest })).rejects.toBeInstanceOf(AuthTokenError);
    await expect(possession.verify({ token: fixture.token, challengeId: challenge.id, digest }, { signal: AbortSignal.abort(new Error("left")) })).rejects.toThrow("left");
    // Neither took the challenge: its owner's answer is still verified.
    expect(await possession.verify({ token: `Bearer ${fixture.token}`, challengeId: challenge.id, digest })).toMatchObject({ id: stored.id, created: false });
  });

  it("refuses unknown and invalid options as the rest of the library does", () => {
    expect(() => check({ rangebytes: 4 } as never)).toThrow("Unknown option `rangebytes` of createPossessionCheck (did you mean `rangeBytes`?).");
    expect(() => check({ ranges: 0 })).toThrow("createPossessionCheck: expected `ranges` to be an integer from 1 to 1024, got 0.");
    expect(() => check({ ttlMs: -5 })).toThrow(/`ttlMs`/);
    expect(() => check({ refusalFloorMs: -1 })).toThrow("createPossessionCheck: expected `refusalFloorMs` to be an integer from 0 to 60000 ms, got -1.");
    expect(() => check({ store: {} as never })).toThrow(/`store`/);
    expect(() => check({ client: undefined as never })).toThrow(/`client`/);
    expect(() => check({ maxBytes: 0 })).toThrow(/`maxBytes`/);
    const possession = check();
    return expect(possession.challenge({ token: fixture.token, mediaId: "6a9b7ce7844aa871", size: 1, name: "a.png" }, { sigal: undefined } as never)).rejects.toThrow(/Unknown option `sigal`/);
  });
});
