// Every public function refuses an option it does not know, naming it (and the one meant when
// only the case differs), before it does anything: a typo is never ignored in silence. And one
// of the wrong type or out of range, naming the function and the option (src/utils/options.ts).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  computeMediaId,
  createAnnotationsClient,
  createFileJournal,
  createPossessionCheck,
  fileJournalFor,
  intakeMedia,
  recoverInterrupted,
  resolveMediaType,
  startRecovery,
  storeCompleteFile,
  storeMedia,
  sweepPartials,
  trackMediaProcessing,
  userIdFromToken,
} from "../src/index.ts";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createRedisJournal } from "../src/journal/redis.ts";
import { mediaIntakeStorage } from "../src/multer/index.ts";
import { createRedisChallengeStore } from "../src/possession/redis-entry.ts";
import { createDetectionQueue, startDetectionWorker } from "../src/queue/index.ts";
import { createRedisTusLocker, createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { MINIMUM } from "../src/utils/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const client = createAnnotationsClient({ baseUrl: "http://127.0.0.1:9" });
const directories = { videosDir: "/nonexistent/v", imagesDir: "/nonexistent/i" };
const loose = (options: object) => options as never;

describe("unknown options", () => {
  it("are refused by every function that takes options", async () => {
    const bytes = new Uint8Array(4);
    await expect(storeMedia(bytes, loose({ originalName: "a.png", directories, maxbytes: 1 }))).rejects.toThrow(
      "Unknown option `maxbytes` of storeMedia (did you mean `maxBytes`?).",
    );
    await expect(intakeMedia(bytes, loose({ originalName: "a.png", directories, client, token: "t", leaseMs: 5 }))).rejects.toThrow(
      "Unknown option `leaseMs` of intakeMedia.",
    );
    expect(() => trackMediaProcessing(() => 1, loose({ client, directorys: directories }))).toThrow("Unknown option `directorys` of trackMediaProcessing.");
    expect(() => trackMediaProcessing(() => 1, { client }).with(loose({ tokn: "x" }))).toThrow("Unknown option `tokn` of a tracked function's `with`.");
    await expect(userIdFromToken("x.y.z", loose({ claims: ["sub"] }))).rejects.toThrow("Unknown option `claims` of userIdFromToken.");
    await expect(userIdFromToken("x.y.z", loose({ verify: { Secret: "s" } }))).rejects.toThrow(
      "Unknown option `Secret` of userIdFromToken's `verify` (did you mean `secret`?).",
    );
    await expect(computeMediaId(bytes, loose({ Size: 4 }))).rejects.toThrow("Unknown option `Size` of computeMediaId (did you mean `size`?).");
    await expect(recoverInterrupted(loose({ client, directories, leaseMs: 1 }))).rejects.toThrow("Unknown option `leaseMs` of recoverInterrupted.");
    expect(() => startRecovery(loose({ client, directories, interval: 5 }))).toThrow("Unknown option `interval` of startRecovery.");
    await expect(sweepPartials(directories, loose({ olderthanms: 1 }))).rejects.toThrow("Unknown option `olderthanms` of sweepPartials (did you mean `olderThanMs`?).");
    expect(() => createFileJournal("/nonexistent/j", loose({ heartbeat: 1 }))).toThrow("Unknown option `heartbeat` of createFileJournal.");
    expect(() => mediaIntakeStorage(loose({ client, directories, maxbytes: 1 }))).toThrow("Unknown option `maxbytes` of mediaIntakeStorage (did you mean `maxBytes`?).");
  });
});

/** The error a call throws or rejects with (a check runs before any work, so nothing is touched). */
async function refusal(run: () => unknown): Promise<Error> {
  try {
    await run();
  } catch (error) {
    return error as Error;
  }
  throw new Error("the call was not refused");
}

interface Case {
  /** The function, as its messages name it. */
  of: string;
  call: (options: Record<string, unknown>) => unknown;
  /** Options that pass, the ones under test added to them. */
  valid: Record<string, unknown>;
  /** An option of the wrong type, and what it is expected to be. */
  wrongType: [name: string, value: unknown, expected: string];
  /** A value out of range, and the range (absent: the function has no ranged option). */
  outOfRange?: [name: string, value: unknown, expected: string];
}

const journal = { location: "fake" };
const cases: Case[] = [
  { of: "storeMedia", call: (o) => storeMedia(new Uint8Array(4), loose(o)), valid: { originalName: "a.png", directories }, wrongType: ["onProgress", 1, "a function"], outOfRange: ["maxBytes", 0, "an integer of at least 1 byte"] },
  { of: "storeCompleteFile", call: (o) => storeCompleteFile("/nonexistent/u", loose(o)), valid: { originalName: "a.png", directories }, wrongType: ["fsync", "yes", "true or false"], outOfRange: ["maxBytes", 0.5, "an integer of at least 1 byte"] },
  { of: "intakeMedia", call: (o) => intakeMedia(new Uint8Array(4), loose(o)), valid: { originalName: "a.png", directories, client, token: "t" }, wrongType: ["naming", "x", "a function"], outOfRange: ["maxBytes", -1, "an integer of at least 1 byte"] },
  { of: "mediaIntakeStorage", call: (o) => mediaIntakeStorage(loose(o)), valid: { directories, client }, wrongType: ["token", "t", "a function"], outOfRange: ["maxBytes", 0, "an integer of at least 1 byte"] },
  { of: "createTusIntake", call: (o) => createTusIntake(loose(o)), valid: { directories, client }, wrongType: ["onMediaIntaken", 1, "a function"], outOfRange: ["sweepIntervalMs", 5, `an integer of at least ${MINIMUM.intervalMs} ms`] },
  { of: "createRedisTusLocker", call: (o) => createRedisTusLocker(loose(o)), valid: { connection: "redis://127.0.0.1:9" }, wrongType: ["lockTtlMs", "1", "an integer of at least 1 ms"], outOfRange: ["acquireTimeoutMs", 0, "an integer of at least 1 ms"] },
  { of: "trackMediaProcessing", call: (o) => trackMediaProcessing(() => 1, loose(o)), valid: { client }, wrongType: ["isFinalFailure", true, "a function"] },
  { of: "recoverInterrupted", call: (o) => recoverInterrupted(loose(o)), valid: { client, directories }, wrongType: ["sweepPartials", "no", "true or false"], outOfRange: ["partialsOlderThanMs", -1, "a number of at least 0 ms"] },
  { of: "startRecovery", call: (o) => startRecovery(loose(o)), valid: { client, directories }, wrongType: ["onPass", 1, "a function"], outOfRange: ["intervalMs", 5, `a number of at least ${MINIMUM.intervalMs} ms`] },
  { of: "sweepPartials", call: (o) => sweepPartials(directories, loose(o)), valid: {}, wrongType: ["olderThanMs", "1", "a number of at least 0 ms"], outOfRange: ["olderThanMs", -1, "a number of at least 0 ms"] },
  { of: "createFileJournal", call: (o) => createFileJournal("/nonexistent/j", loose(o)), valid: {}, wrongType: ["heartbeatMs", "100", "a number of at least 100 ms"], outOfRange: ["heartbeatMs", 50, "a number of at least 100 ms"] },
  { of: "createRedisJournal", call: (o) => createRedisJournal(loose(o)), valid: { connection: "redis://127.0.0.1:9" }, wrongType: ["timeoutMs", "1", "an integer of at least 1 ms"], outOfRange: ["heartbeatMs", 50, "a number of at least 100 ms"] },
  { of: "createDetectionQueue", call: (o) => createDetectionQueue(loose(o)), valid: { connection: { host: "127.0.0.1", port: 9 } }, wrongType: ["attempts", "3", "an integer of at least 1"], outOfRange: ["backoffMs", -1, "an integer of at least 0 ms"] },
  { of: "startDetectionWorker", call: (o) => startDetectionWorker(() => 1, loose(o)), valid: { connection: { host: "127.0.0.1", port: 9 }, client, journal }, wrongType: ["concurrency", "1", "an integer of at least 1"], outOfRange: ["stalledIntervalMs", 5, `an integer of at least ${MINIMUM.intervalMs} ms`] },
  { of: "createAnnotationsClient", call: (o) => createAnnotationsClient(loose(o)), valid: { baseUrl: "http://127.0.0.1:9" }, wrongType: ["fetch", "fetch", "a function"], outOfRange: ["timeoutMs", 0, "a number of at least 1 ms"] },
  { of: "userIdFromToken", call: (o) => userIdFromToken("x.y.z", loose(o)), valid: {}, wrongType: ["claim", 1, "a claim name or a list of them"] },
  { of: "computeMediaId", call: (o) => computeMediaId(new Uint8Array(4), loose(o)), valid: {}, wrongType: ["size", "4", "an integer of at least 0 bytes"], outOfRange: ["size", -1, "an integer of at least 0 bytes"] },
  { of: "resolveMediaType", call: (o) => resolveMediaType("a.png", loose(o)), valid: {}, wrongType: ["replaceDefaults", "yes", "true or false"] },
  { of: "createPossessionCheck", call: (o) => createPossessionCheck(loose(o)), valid: { directories, client }, wrongType: ["naming", "x", "a function"], outOfRange: ["ranges", 0, "an integer from 1 to 1024"] },
  { of: "createRedisChallengeStore", call: (o) => createRedisChallengeStore(loose(o)), valid: { connection: "redis://127.0.0.1:9" }, wrongType: ["prefix", 1, "a non-empty string"] },
  { of: "startDevAnnotationsServer", call: (o) => startDevAnnotationsServer(loose(o)), valid: { dbPath: ":memory:" }, wrongType: ["port", "80", "an integer from 0 to 65535"], outOfRange: ["port", 70_000, "an integer from 0 to 65535"] },
];

describe("every public function that takes options", () => {
  it.each(cases)("$of refuses an unknown option, naming it", async ({ of, call, valid }) => {
    expect((await refusal(() => call({ ...valid, nonsense: 1 }))).message).toBe(`Unknown option \`nonsense\` of ${of}.`);
  });

  it.each(cases)("$of refuses an option of the wrong type, naming it and the function", async ({ of, call, valid, wrongType: [name, value, expected] }) => {
    const error = await refusal(() => call({ ...valid, [name]: value }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(new RegExp(`^${of}: expected \`${name}\` to be `));
    expect(error.message).toContain(expected);
  });

  it.each(cases.filter((c) => c.outOfRange))("$of refuses a value out of range, naming it, the range and the value", async ({ of, call, valid, outOfRange }) => {
    const [name, value, expected] = outOfRange!;
    const error = await refusal(() => call({ ...valid, [name]: value }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`${of}: expected \`${name}\` to be ${expected}, got ${String(value)}.`);
  });

  it.each([
    ["createRedisJournal", (o: object) => createRedisJournal(loose(o))],
    ["createRedisTusLocker", (o: object) => createRedisTusLocker(loose(o))],
    ["createDetectionQueue", (o: object) => createDetectionQueue(loose(o))],
    ["createRedisChallengeStore", (o: object) => createRedisChallengeStore(loose(o))],
  ] as const)("%s refuses a missing or scheme-less Redis connection instead of using localhost in silence", async (of, call) => {
    for (const connection of [undefined, "", "127.0.0.1:6379", "localhost:6379"]) {
      const error = await refusal(() => call({ connection }));
      expect(error, String(connection)).toBeInstanceOf(TypeError);
      expect(error.message).toMatch(new RegExp(`^${of}: expected \`connection\` to be a redis:// or rediss:// URL`));
    }
  });

  it("holds one minimum per concept, the same in both journal engines", async () => {
    expect((await refusal(() => createFileJournal("/nonexistent/j", { heartbeatMs: 99 }))).message).toBe(
      "createFileJournal: expected `heartbeatMs` to be a number of at least 100 ms, got 99.",
    );
    expect((await refusal(() => createRedisJournal({ connection: "redis://127.0.0.1:9", heartbeatMs: 99 }))).message).toBe(
      "createRedisJournal: expected `heartbeatMs` to be a number of at least 100 ms, got 99.",
    );
  });

  it("names a nested option by its path", async () => {
    expect((await refusal(() => createAnnotationsClient({ baseUrl: "http://127.0.0.1:9", retry: { retries: 1.5 } }))).message).toBe(
      "createAnnotationsClient: expected `retry.retries` to be an integer of at least 0, got 1.5.",
    );
    expect((await refusal(() => createTusIntake(loose({ directories, client, auth: { verify: { secret: "" } } })))).message).toBe(
      "createTusIntake: expected `auth.verify.secret` to be a non-empty secret.",
    );
    expect((await refusal(() => mediaIntakeStorage(loose({ directories, client, mediaTypes: { extensions: { ".x": 3 } } })))).message).toBe(
      'mediaIntakeStorage: expected `mediaTypes.extensions[".x"]` to be MediaType.Video (1) or MediaType.Image (2), got 3.',
    );
  });

  // The one durability setting of the intake path, on every function of it.
  const durable: Array<[of: string, call: (options: Record<string, unknown>) => unknown, valid: Record<string, unknown>]> = [
    ["storeMedia", (o) => storeMedia(new Uint8Array(4), loose(o)), { originalName: "a.png", directories }],
    ["storeCompleteFile", (o) => storeCompleteFile("/nonexistent/u", loose(o)), { originalName: "a.png", directories }],
    ["intakeMedia", (o) => intakeMedia(new Uint8Array(4), loose(o)), { originalName: "a.png", directories, client, token: "t" }],
    ["mediaIntakeStorage", (o) => mediaIntakeStorage(loose(o)), { directories, client }],
    ["createTusIntake", (o) => createTusIntake(loose(o)), { directories, client }],
    ["trackMediaProcessing", (o) => trackMediaProcessing(() => 1, loose(o)), { client, directories }],
    ["createFileJournal", (o) => createFileJournal("/nonexistent/j", loose(o)), {}],
  ];

  it.each(durable)("%s refuses a durability that is not \"process\" or \"power\", naming itself and the option", async (of, call, valid) => {
    for (const durability of ["disk", "Power", true, 1, null]) {
      const error = await refusal(() => call({ ...valid, durability }));
      expect(error, String(durability)).toBeInstanceOf(TypeError);
      expect(error.message).toBe(`${of}: expected \`durability\` to be "process" or "power", got ${typeof durability === "string" ? JSON.stringify(durability) : String(durability)}.`);
    }
  });

  it.each(durable.filter(([of]) => of !== "trackMediaProcessing" && of !== "createFileJournal"))(
    "%s refuses the deprecated fsync when it contradicts durability, and accepts it alone or agreeing (that `fsync: true` syncs as power: test/durability.test.ts)",
    async (of, call, valid) => {
      const contradiction = await refusal(() => call({ ...valid, durability: "process", fsync: true }));
      expect(contradiction).toBeInstanceOf(TypeError);
      expect(contradiction.message).toBe(`${of}: expected \`fsync\` to be left out (it is deprecated) or false with durability "process", got true.`);
      expect((await refusal(() => call({ ...valid, durability: "power", fsync: false }))).message).toBe(
        `${of}: expected \`fsync\` to be left out (it is deprecated) or true with durability "power", got false.`,
      );
      // Agreeing or alone, accepted: whatever a call then fails on (four bytes that are no PNG, a
      // token that is no JWT, a file that is not there), it is not its options. In a temp folder:
      // what is accepted may make its folders.
      const root = await makeTempDir();
      const real = { videosDir: join(root, "v"), imagesDir: join(root, "i") };
      for (const accepted of [{ fsync: true }, { durability: "power", fsync: true }, { durability: "process", fsync: false }, { durability: "power" }]) {
        const outcome = await Promise.resolve()
          .then(() => call({ ...valid, ...("directories" in valid ? { directories: real } : {}), ...accepted }))
          .catch((error: unknown) => error);
        expect(outcome, JSON.stringify(accepted)).not.toBeInstanceOf(TypeError);
        if (of === "createTusIntake") await (outcome as TusIntake).close();
      }
    },
  );

  it("trackMediaProcessing and createFileJournal take durability, and no deprecated fsync", async () => {
    expect(() => trackMediaProcessing(() => 1, { client, directories: { videosDir: "/nonexistent/t", imagesDir: "/nonexistent/ti" }, durability: "power" })).not.toThrow();
    const journal = createFileJournal("/nonexistent/durable", { durability: "power" });
    expect(journal.location).toBe("/nonexistent/durable");
    await journal.close();
    expect(() => createFileJournal("/nonexistent/j", { durability: "process", heartbeatMs: 1000 })).not.toThrow();
    expect(() => createFileJournal("/nonexistent/j", loose({ fsync: true }))).toThrow("Unknown option `fsync` of createFileJournal.");
    expect(() => trackMediaProcessing(() => 1, loose({ client, fsync: true }))).toThrow("Unknown option `fsync` of trackMediaProcessing.");
  });

  it("fileJournalFor checks its options on every call, not only the first for a folder", () => {
    const dirs = { videosDir: "/nonexistent/fjf", imagesDir: "/nonexistent/fjfi" };
    expect(fileJournalFor(dirs, { durability: "power" }).location).toBe("/nonexistent/fjf/.media-intake-journal");
    expect(() => fileJournalFor(dirs, loose({ durability: "POWER" }))).toThrow('fileJournalFor: expected `durability` to be "process" or "power", got "POWER".');
    expect(() => fileJournalFor(dirs, loose({ durabilty: "power" }))).toThrow("Unknown option `durabilty` of fileJournalFor.");
  });

  it("validates the options when they are given, not when first used", async () => {
    expect((await refusal(() => mediaIntakeStorage(loose({ directories, client, verify: "maybe" })))).message).toBe(
      'mediaIntakeStorage: expected `verify` to be "reject", "warn" or "off", got "maybe".',
    );
    expect((await refusal(() => createTusIntake(loose({ directories, client, auth: { claim: [] } })))).message).toMatch(/^createTusIntake: expected `auth.claim`/);
  });
});
