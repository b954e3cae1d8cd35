// The possession check's challenge store on a real redis-server: SET PX on put, GETDEL on take (a
// challenge handed out once across hosts), an expired one never; two checks on one store as two
// hosts; and the example in Redis mode, whose verified answer is /detect's answer for those bytes.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { createDetectionsApp } from "../../examples/express/app.ts";
import type { Detection } from "../../examples/express/detector.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, createPossessionCheck, intakeMedia, JournalUnavailableError, PossessionNotProvenError } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { issueChallenge } from "../../src/possession/index.ts";
import { createRedisChallengeStore, type RedisChallengeStore } from "../../src/possession/redis-entry.ts";
import { createDetectionQueue } from "../../src/queue/index.ts";
import { signToken, storageDirectoriesIn } from "../helpers/fixture.ts";
import { digestOf, noisyPng, randomDigest } from "../helpers/possession.ts";
import { redisEvent, startRedisServer } from "../helpers/redis-server.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";

let redisUrl: string;
let redis: Awaited<ReturnType<typeof startRedisServer>>;
let raw: Redis;
const prefix = "test-possession";

beforeEach(async () => {
  redis = await startRedisServer();
  redisUrl = redis.url;
  raw = new Redis(redisUrl);
  raw.on("error", () => {});
  onTestFinished(() => raw.disconnect());
});

/** A store of its own connection, as another host would have. */
function store(): RedisChallengeStore {
  const made = createRedisChallengeStore({ connection: redisUrl, prefix });
  onTestFinished(() => made.close());
  return made;
}

const subject = { userId: "alice", mediaId: "6a9b7ce7844aa871", size: 200_000, name: "a.png" };

describe("the Redis challenge store", () => {
  it("keeps a challenge with SET PX until its expiry, and hands it out once with GETDEL", async () => {
    const { kept } = issueChallenge(subject, { ttlMs: 30_000 });
    const challenges = store();
    await challenges.put(kept);
    const key = `${prefix}:${kept.id}`;
    const ttl = await raw.pttl(key);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect(await challenges.take(kept.id)).toEqual(kept);
    expect(await raw.exists(key)).toBe(0);
    expect(await challenges.take(kept.id)).toBeUndefined();
  });

  it("hands a challenge to exactly one of several hosts taking it at once", async () => {
    const hosts = [store(), store(), store(), store()];
    for (let round = 0; round < 20; round += 1) {
      const { kept } = issueChallenge(subject);
      await hosts[round % hosts.length]?.put(kept);
      const taken = await Promise.all(hosts.map((host) => host.take(kept.id)));
      expect(taken.filter((challenge) => challenge !== undefined)).toEqual([kept]);
    }
  });

  it("never hands out an expired challenge: one put past its expiry is not kept, one read past it is dropped", async () => {
    const challenges = store();
    const { kept } = issueChallenge(subject, { ttlMs: 1_000, now: () => Date.now() - 5_000 });
    await challenges.put(kept);
    expect(await raw.keys(`${prefix}:*`)).toEqual([]);
    // A value whose key outlives its expiry (another clock wrote it): refused, and gone.
    await raw.set(`${prefix}:${kept.id}`, JSON.stringify(kept), "PX", 60_000);
    expect(await challenges.take(kept.id)).toBeUndefined();
    expect(await raw.exists(`${prefix}:${kept.id}`)).toBe(0);
    // Something else under the prefix is no challenge.
    await raw.set(`${prefix}:other`, "not json", "PX", 60_000);
    expect(await challenges.take("other")).toBeUndefined();
  });

  it("rejects with JournalUnavailableError while Redis is down, and works again once it is back", async () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    client.on("error", () => {});
    onTestFinished(() => client.disconnect());
    await redisEvent(client, "ready");
    const challenges = createRedisChallengeStore({ connection: client, prefix });
    const { kept } = issueChallenge(subject);
    const closed = redisEvent(client, "close");
    await redis.stop();
    await closed;
    await expect(challenges.put(kept)).rejects.toBeInstanceOf(JournalUnavailableError);
    await expect(challenges.take(kept.id)).rejects.toMatchObject({ code: "JOURNAL_UNAVAILABLE" });
    const ready = redisEvent(client, "ready");
    await redis.start();
    await ready;
    await challenges.put(kept);
    expect(await challenges.take(kept.id)).toEqual(kept);
    // A client given is the caller's: left open.
    await challenges.close();
    expect(await client.ping()).toBe("PONG");
  });

  it("checks its options as the other Redis engines do", () => {
    expect(() => createRedisChallengeStore({ connection: "localhost:6379" })).toThrow(/createRedisChallengeStore: expected `connection` to be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => createRedisChallengeStore({ connection: redisUrl, Prefix: "x" } as never)).toThrow("Unknown option `Prefix` of createRedisChallengeStore (did you mean `prefix`?).");
    expect(() => createRedisChallengeStore({ connection: redisUrl, prefix: "" })).toThrow(/`prefix`/);
  });
});

describe("two hosts on one Redis challenge store", () => {
  it("verifies on one host the challenge the other issued, once", async () => {
    const root = await makeTempDir();
    const secret = "possession-redis-secret-0123456789ab";
    const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const token = await signToken("alice", secret, "5m");
    const options = { directories: storageDirectoriesIn(root), client: createAnnotationsClient({ baseUrl: annotations.url, token }), auth: { verify: { secret } } };
    const png = noisyPng();
    const stored = await intakeMedia(png, { ...options, originalName: "a.png", token });
    const [a, b] = [createPossessionCheck({ ...options, store: store() }), createPossessionCheck({ ...options, store: store() })];
    const challenge = await a.challenge({ token, mediaId: stored.id, size: png.length, name: "a.png" });
    const digest = await digestOf(challenge, png);
    expect(await b.verify({ token, challengeId: challenge.id, digest })).toMatchObject({ id: stored.id, created: false, fileCreated: false });
    await expect(a.verify({ token, challengeId: challenge.id, digest })).rejects.toBeInstanceOf(PossessionNotProvenError);
    // A wrong answer on the other host names the media ID it was for: that host can count it.
    const wrong = await a.challenge({ token, mediaId: stored.id, size: png.length, name: "a.png" });
    await expect(b.verify({ token, challengeId: wrong.id, digest: randomDigest() })).rejects.toMatchObject({ code: "POSSESSION_NOT_PROVEN", mediaId: stored.id });
    expect(await raw.keys(`${prefix}:*`)).toEqual([]);
  });
});

describe("the example with REDIS_URL", () => {
  it("answers a verified answer as /detect answers the upload of those bytes (202 and where to poll while the job waits), the second uploader without the first's user", async () => {
    const root = await makeTempDir();
    const secret = "possession-example-secret-0123456789";
    const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: secret });
    onTestFinished(() => annotations.close());
    const tokens = { alice: await signToken("alice", secret, "5m"), bob: await signToken("bob", secret, "5m") };
    // No worker: every job waits, so each answer is the 202 of a job still waiting.
    const detections = createDetectionQueue<Detection[]>({ connection: { url: redisUrl } });
    const journal = createRedisJournal({ connection: redisUrl, prefix: "media-intake:journal" });
    const challengeStore = createRedisChallengeStore({ connection: redisUrl, prefix: "media-intake:possession" });
    onTestFinished(async () => {
      await detections.close();
      await journal.close();
      await challengeStore.close();
    });
    const app = createDetectionsApp({
      client: createAnnotationsClient({ baseUrl: annotations.url, token: tokens.alice }),
      directories: storageDirectoriesIn(root),
      auth: { verify: { secret } },
      queue: { detections, journal, resultWaitMs: 100 },
      challengeStore,
    });
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const call = async (path: string, as: "alice" | "bob", body: FormData | object) => {
      const response = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[as]}`, ...(body instanceof FormData ? {} : { "content-type": "application/json" }) },
        body: body instanceof FormData ? body : JSON.stringify(body),
      });
      return { status: response.status, location: response.headers.get("location"), body: (await response.json()) as Record<string, any> };
    };
    const form = (name: string) => {
      const data = new FormData();
      data.append("file", new Blob([png as Uint8Array<ArrayBuffer>]), name);
      return data;
    };
    const png = noisyPng();
    const id = await computeMediaId(png);
    expect(await call("/detect", "alice", form("alice-private.png"))).toMatchObject({ status: 202, body: { detection: { jobId: id, state: "waiting" } } });
    const stored = async () => [await filesUnder(join(root, "images")), await filesUnder(join(root, "videos"))];
    const files = await stored();
    for (const as of ["alice", "bob"] as const) {
      const { challenge } = (await call("/possession", as, { mediaId: id, size: png.length, name: `${as}.png` })).body;
      expect(await raw.exists(`media-intake:possession:${challenge.id}`)).toBe(1);
      const verified = await call(`/possession/${challenge.id}`, as, { digest: await digestOf(challenge, png) });
      expect(verified).toEqual(await call("/detect", as, form(`${as}.png`)));
      expect(verified.status).toBe(202);
      if (as === "alice") expect(verified).toMatchObject({ location: `/detections/${id}`, body: { media: { id, userId: "alice" }, detection: { jobId: id, poll: `/detections/${id}` } } });
      else expect(JSON.stringify(verified.body)).not.toContain("alice");
    }
    expect(await stored()).toEqual(files);
  });
});
