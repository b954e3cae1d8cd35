// The example's possession routes over real HTTP on loopback, with the dev annotations server and
// the stand-in detector: `POST /possession` then `POST /possession/:challengeId` answers exactly as
// `POST /detect` answers an upload of the same bytes by the same caller (the second uploader's
// answer to another user), and every refusal is the one 403 that creates nothing (no record, no
// journal entry, no file, no detection run).
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDetectionsApp, type DetectionsAppConfig } from "../examples/express/app.ts";
import { detect } from "../examples/express/detector.ts";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, createMemoryChallengeStore, fileJournalFor, type PossessionChallenge } from "../src/index.ts";
import { signToken } from "./helpers/fixture.ts";
import { digestOf, noisyPng, onlyTheSamples, randomDigest } from "./helpers/possession.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const secret = "express-possession-secret-0123456789";
let root: string;
let annotations: DevAnnotationsServer;
let url: string;
let close: () => Promise<void>;
let detected: string[];
const tokens: Record<string, string> = {};
const directories = () => ({ videosDir: join(root, "videos"), imagesDir: join(root, "images") });

async function startApp(options: Partial<DetectionsAppConfig> = {}) {
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: annotations.url, token: tokens.service as string }),
    directories: directories(),
    auth: { verify: { secret } },
    // The stand-in detector, each run seen.
    detector: (path, id, signal) => (detected.push(id), detect(path, id, signal)),
    ...options,
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
}

beforeEach(async () => {
  root = await makeTempDir();
  detected = [];
  annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
  for (const sub of ["alice", "bob", "service"]) tokens[sub] = await signToken(sub, secret, "5m");
  await startApp();
});
afterEach(async () => {
  await close();
  await annotations.close();
});

async function post(path: string, as: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { ...(as ? { authorization: `Bearer ${tokens[as] ?? as}` } : {}), "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const retryAfter = response.headers.get("retry-after");
  return { status: response.status, body: (await response.json()) as Record<string, any>, ...(retryAfter ? { retryAfter } : {}) };
}

async function upload(bytes: Uint8Array, name: string, as: string) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${url}/detect`, { method: "POST", headers: { authorization: `Bearer ${tokens[as]}` }, body: form });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** A challenge for `bytes` as `name`, asked by `as`. */
async function challengeFor(bytes: Uint8Array, name: string, as: string, mediaId?: string): Promise<PossessionChallenge> {
  const asked = await post("/possession", as, { mediaId: mediaId ?? (await computeMediaId(bytes)), size: bytes.length, name });
  expect(asked.status).toBe(200);
  expect(Object.keys(asked.body)).toEqual(["challenge"]);
  return asked.body.challenge as PossessionChallenge;
}

/** What a refusal must leave as it was: the records of `ids` (their histories), the storage folders (the journal's included), the journal's entries, the detection runs. */
async function state(...ids: string[]) {
  const histories = await Promise.all(
    ids.map(async (id) => {
      const response = await fetch(`${annotations.url}/api/media/${id}/history`, { headers: { authorization: `Bearer ${tokens.service}` } });
      return response.status === 200 ? ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus) : response.status;
    }),
  );
  return { histories, images: await filesUnder(directories().imagesDir), videos: await filesUnder(directories().videosDir), journal: await fileJournalFor(directories()).list(), runs: [...detected] };
}

const notProven = { status: 403, body: { error: { code: "POSSESSION_NOT_PROVEN", message: "The possession of the content was not proven; upload the file." } } };

describe("a verified answer", () => {
  it("gets /detect's very answer for the same bytes by the same user; another user gets the second uploader's answer", async () => {
    const png = noisyPng();
    const first = await upload(png, "alice-private.png", "alice");
    expect(first).toMatchObject({ status: 200, body: { media: { userId: "alice", created: true, mediaStatus: 3 } } });
    const id = first.body.media.id as string;
    for (const as of ["alice", "bob"]) {
      const challenge = await challengeFor(png, `${as}.png`, as);
      const verified = await post(`/possession/${challenge.id}`, as, { digest: await digestOf(challenge, png) });
      const uploaded = await upload(png, `${as}.png`, as);
      expect(verified).toMatchObject({ status: 200 });
      expect(verified.body).toEqual(uploaded.body);
      expect(verified.body).toMatchObject({ media: { id, created: false, fileCreated: false, mediaStatus: 3 }, detections: first.body.detections });
    }
    const bobs = await post(`/possession/${(await challengeFor(png, "bob.png", "bob")).id}`, "bob", { digest: "x" });
    expect(bobs).toEqual(notProven);
    // The second uploader's answer: no user ID, no name of the first uploader.
    const challenge = await challengeFor(png, "bob.png", "bob");
    const second = await post(`/possession/${challenge.id}`, "bob", { digest: await digestOf(challenge, png) });
    expect(second.body.media).not.toHaveProperty("userId");
    expect(second.body.media).not.toHaveProperty("name");
    expect(JSON.stringify(second.body)).not.toContain("alice");
    // The record's lifecycle ran again for alice's answer as for her re-upload (one run each), and never for bob's.
    expect((await state(id)).histories).toEqual([[1, 2, 3, 2, 3, 2, 3]]);
  });
});

describe("every refusal", () => {
  it("is the one 403, and creates nothing: replayed, another user's, the ID alone, a random digest, wrong ranges, no digest, content not held", async () => {
    // More refusals for one media ID than the hourly cap allows (below): raised for this test.
    await close();
    await startApp({ possessionRefusalsPerHour: 10 });
    const png = noisyPng();
    const id = (await upload(png, "alice-private.png", "alice")).body.media.id as string;
    const absent = noisyPng();
    const absentId = await computeMediaId(absent);
    // Replayed: verified once, then refused.
    const once = await challengeFor(png, "again.png", "alice");
    const digest = await digestOf(once, png);
    expect(await post(`/possession/${once.id}`, "alice", { digest })).toMatchObject({ status: 200 });
    const before = await state(id, absentId);
    expect(before.histories[1]).toBe(404);
    const refusals: Array<() => Promise<unknown>> = [
      async () => post(`/possession/${once.id}`, "alice", { digest }),
      // Alice's challenge, answered right by bob: refused, and burnt for alice too.
      async () => {
        const alices = await challengeFor(png, "a.png", "alice");
        const answer = { digest: await digestOf(alices, png) };
        return [await post(`/possession/${alices.id}`, "bob", answer), await post(`/possession/${alices.id}`, "alice", answer)];
      },
      async () => {
        const challenge = await challengeFor(png, "b.png", "bob");
        return post(`/possession/${challenge.id}`, "bob", { digest: await digestOf(challenge, onlyTheSamples(png)) });
      },
      async () => post(`/possession/${(await challengeFor(png, "b.png", "bob")).id}`, "bob", { digest: randomDigest() }),
      async () => {
        const challenge = await challengeFor(png, "b.png", "bob");
        const shifted = { ...challenge, ranges: challenge.ranges.map(({ offset, length }) => ({ offset: offset + 4096, length })).filter(({ offset }) => offset + 4096 <= png.length) };
        return post(`/possession/${challenge.id}`, "bob", { digest: await digestOf(shifted, png) });
      },
      async () => post(`/possession/${(await challengeFor(png, "b.png", "bob")).id}`, "bob", {}),
      async () => post(`/possession/${(await challengeFor(png, "b.png", "bob")).id}`, "bob", "", { "content-type": "text/plain" }),
      async () => post("/possession/AAAAAAAAAAAAAAAAAAAAAA", "bob", { digest: randomDigest() }),
      async () => {
        const challenge = await challengeFor(absent, "new.png", "bob");
        return post(`/possession/${challenge.id}`, "bob", { digest: await digestOf(challenge, absent) });
      },
    ];
    for (const refuse of refusals) {
      const answers = [await refuse()].flat();
      for (const answer of answers) expect(answer).toEqual(notProven);
    }
    expect(await state(id, absentId)).toEqual(before);
  });

  it("an expired challenge: refused alike, nothing created", async () => {
    await close();
    let now = Date.now();
    await startApp({ challengeStore: createMemoryChallengeStore({ now: () => now }) });
    const png = noisyPng(60 * 1024);
    const id = (await upload(png, "a.png", "alice")).body.media.id as string;
    const before = await state(id);
    const challenge = await challengeFor(png, "a.png", "alice");
    now = challenge.expiresAt;
    expect(await post(`/possession/${challenge.id}`, "alice", { digest: await digestOf(challenge, png) })).toEqual(notProven);
    expect(await state(id)).toEqual(before);
  });
});

describe("the requests refused before a challenge", () => {
  it("401 without a valid token on both routes, whatever the body; 400, 413 and 415 as an upload's", async () => {
    await close();
    await startApp({ maxUploadBytes: 100_000 });
    const request = { mediaId: "6a9b7ce7844aa871", size: 10, name: "a.png" };
    for (const path of ["/possession", "/possession/AAAAAAAAAAAAAAAAAAAAAA"]) {
      expect(await post(path, undefined, request)).toMatchObject({ status: 401, body: { error: { code: "AUTH_TOKEN_INVALID" } } });
      expect(await post(path, "not-a-token", "{ not json")).toMatchObject({ status: 401, body: { error: { code: "AUTH_TOKEN_INVALID" } } });
    }
    expect(await post("/possession", "bob", { ...request, mediaId: "abc" })).toMatchObject({ status: 400, body: { error: { code: "INVALID_MEDIA_ID" } } });
    expect(await post("/possession", "bob", { ...request, size: -1 })).toMatchObject({ status: 400, body: { error: { code: "INVALID_MEDIA_SIZE" } } });
    expect(await post("/possession", "bob", { ...request, size: "10" })).toMatchObject({ status: 400, body: { error: { code: "INVALID_MEDIA_SIZE" } } });
    expect(await post("/possession", "bob", "{ not json")).toMatchObject({ status: 400, body: { error: { code: "BAD_REQUEST" } } });
    expect(await post("/possession", "bob", { ...request, name: "a.exe" })).toMatchObject({ status: 415, body: { error: { code: "UNSUPPORTED_MEDIA_TYPE" } } });
    expect(await post("/possession", "bob", { ...request, size: 100_001 })).toMatchObject({
      status: 413,
      body: { error: { code: "MEDIA_TOO_LARGE", message: "The upload is over the limit of 100 kB (100000 bytes)." } },
    });
    // A body of more than a few KiB is refused unread.
    expect(await post("/possession", "bob", { ...request, name: `${"a".repeat(5000)}.png` })).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    expect(await post("/possession/AAAAAAAAAAAAAAAAAAAAAA", "bob", { digest: "a".repeat(5000) })).toMatchObject({ status: 413 });
  });

  it("says what to send: a body over 4 KiB, not JSON, JSON under another type or charset, no name, a virtual ID; an unread answer burns nothing", async () => {
    const request = { mediaId: "6a9b7ce7844aa871", size: 10, name: "a.png" };
    const error = (status: number, code: string, message: string) => ({ status, body: { error: { code, message } } });
    const challengeBody = '{ "mediaId", "size", "name" }';
    expect(await post("/possession", "bob", { ...request, name: `${"a".repeat(5000)}.png` })).toEqual(
      error(413, "PAYLOAD_TOO_LARGE", `The body is over this route's limit of 4 KiB: send only ${challengeBody}, as JSON.`),
    );
    expect(await post("/possession/AAAAAAAAAAAAAAAAAAAAAA", "bob", { digest: "a".repeat(5000) })).toEqual(
      error(413, "PAYLOAD_TOO_LARGE", 'The body is over this route\'s limit of 4 KiB: send only { "digest" }, as JSON.'),
    );
    expect(await post("/possession", "bob", "mediaId=1")).toEqual(error(400, "BAD_REQUEST", `The body is not valid JSON: send ${challengeBody} as JSON, with Content-Type: application/json.`));
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      expect(await post("/possession", "bob", request, { "content-type": type })).toEqual(
        error(415, "UNSUPPORTED_CONTENT_TYPE", `Send the body as JSON, ${challengeBody}, with Content-Type: application/json; got "${type}".`),
      );
    }
    expect(await post("/possession", "bob", request, { "content-type": "application/json; charset=latin1" })).toEqual(
      error(415, "UNSUPPORTED_CONTENT_TYPE", `The body's charset "latin1" is not one of JSON's: send ${challengeBody} as UTF-8 (Content-Type: application/json).`),
    );
    expect(await post("/possession", "bob", [request])).toEqual(error(400, "BAD_REQUEST", `Expected a JSON object ${challengeBody}, got an array.`));
    expect(await post("/possession", "bob", { ...request, name: 5 })).toEqual(
      error(400, "BAD_REQUEST", 'Expected "name" to be the file\'s name, a string such as "clip.mp4" (it decides the media type), got 5.'),
    );
    expect(await post("/possession", "bob", { ...request, mediaId: "V6a9b7ce7844aa871" })).toEqual(
      error(400, "INVALID_MEDIA_ID", 'Expected a media ID of 16 hex digits, got "V6a9b7ce7844aa871" (a virtual ID, V and 16 hex digits, names content held in memory only: it is never stored).'),
    );
    // An answer sent as text is not read: its challenge is still there for the JSON one.
    const png = noisyPng();
    await upload(png, "a.png", "bob");
    const challenge = await challengeFor(png, "a.png", "bob");
    const answer = { digest: await digestOf(challenge, png) };
    expect(await post(`/possession/${challenge.id}`, "bob", answer, { "content-type": "text/plain" })).toMatchObject({ status: 415, body: { error: { code: "UNSUPPORTED_CONTENT_TYPE" } } });
    expect(await post(`/possession/${challenge.id}`, "bob", answer)).toMatchObject({ status: 200, body: { media: { userId: "bob" } } });
  });

  it("a user whose answers for one media ID were refused 3 times within the hour gets 429 with Retry-After for it; verified answers, other IDs and other users are not held back", async () => {
    const png = noisyPng();
    const absent = noisyPng();
    const absentId = await computeMediaId(absent);
    await upload(png, "a.png", "alice");
    // Alice holds her file: verified answers are no refusals, however many.
    for (let round = 0; round < 4; round += 1) {
      const challenge = await challengeFor(png, "a.png", "alice");
      expect((await post(`/possession/${challenge.id}`, "alice", { digest: await digestOf(challenge, png) })).status).toBe(200);
    }
    for (const id of [absentId, await computeMediaId(png)]) {
      for (let round = 0; round < 3; round += 1) expect(await post(`/possession/${(await challengeFor(absent, "b.png", "bob", id)).id}`, "bob", { digest: randomDigest() })).toEqual(notProven);
      const capped = await post("/possession", "bob", { mediaId: id.toUpperCase(), size: absent.length, name: "b.png" });
      expect(capped).toMatchObject({ status: 429, body: { error: { code: "TOO_MANY_CHALLENGES", message: expect.stringContaining(`media ${id} were refused`) } } });
      expect(Number(capped.retryAfter)).toBeGreaterThan(3500);
      expect(Number(capped.retryAfter)).toBeLessThanOrEqual(3600);
      // Alice is not held back for it, nor bob for another ID.
      await challengeFor(absent, "b.png", "alice", id);
    }
    await challengeFor(noisyPng(), "c.png", "bob");
  });

  it("challenges for one media ID awaiting their answer count as refusals until answered or expired: asking for many at once does not get past the cap", async () => {
    const png = noisyPng();
    const id = await computeMediaId(png);
    const waiting = [await challengeFor(png, "a.png", "bob"), await challengeFor(png, "a.png", "bob"), await challengeFor(png, "a.png", "bob")];
    const fourth = await post("/possession", "bob", { mediaId: id, size: png.length, name: "a.png" });
    expect(fourth).toMatchObject({ status: 429, body: { error: { code: "TOO_MANY_CHALLENGES" } } });
    // The first of them expires within its 30 s.
    expect(Number(fourth.retryAfter)).toBeLessThanOrEqual(30);
    // Alice uploads it meanwhile: bob's answers are verified, and no longer awaited.
    await upload(png, "a.png", "alice");
    for (const challenge of waiting) expect((await post(`/possession/${challenge.id}`, "bob", { digest: await digestOf(challenge, png) })).status).toBe(200);
    await challengeFor(png, "a.png", "bob");
  });

  it("a user who asks for more challenges than the limit in a minute gets 429 with Retry-After; another user does not", async () => {
    await close();
    await startApp({ possessionChallengesPerMinute: 2 });
    const request = { mediaId: "6a9b7ce7844aa871", size: 10, name: "a.png" };
    expect((await post("/possession", "bob", request)).status).toBe(200);
    expect((await post("/possession", "bob", request)).status).toBe(200);
    const third = await post("/possession", "bob", request);
    expect(third).toMatchObject({ status: 429, body: { error: { code: "TOO_MANY_CHALLENGES" } } });
    expect(Number(third.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(third.retryAfter)).toBeLessThanOrEqual(60);
    expect((await post("/possession", "alice", request)).status).toBe(200);
  });
});
