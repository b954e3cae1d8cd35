// The possession check (docs/possession.md): a challenge for every well-formed request, whether
// the service holds the content or not, and an answer that, verified, has exactly the effect of
// an upload of those bytes by that caller: the intake's own flow (journal entry, record, the
// pending and refusal rules, telemetry), with the stored file in place of the upload's bytes.
import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { AnnotationsClient } from "../annotations/index.ts";
import { userIdFromToken, type UserIdFromTokenOptions } from "../auth/index.ts";
import { InvalidMediaSizeError, MediaTooLargeError, PossessionNotProvenError } from "../errors/index.ts";
import { checkIntakeOptions, type IntakenMedia, intakeThrough, isRefusedUpload } from "../intake/index.ts";
import type { MediaJournal } from "../journal/index.ts";
import type { LifecycleLogger } from "../lifecycle/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import { type DetectedMediaKind, DETECTION_BYTES, type MediaTypeOptions } from "../media-type/index.ts";
import { checkMediaHead, normalizeStorageDirectories, resolveUploadName, type StorageDirectories, type StorageNaming, storedPathsOf, type UploadName } from "../storage/index.ts";
import { recordUpload, type UploadOutcome } from "../telemetry/index.ts";
import { checkOptionsOf, type Durability, MINIMUM, rejectUnknownOptions } from "../utils/index.ts";
import { DEFAULT_RANGE_BYTES, DEFAULT_RANGES, DEFAULT_TTL_MS, issueChallenge, type KeptChallenge } from "./challenge.ts";
import type { PossessionChallenge } from "./digest.ts";
import { fileRangeReader } from "./file-range.ts";
import { answerMatches, openHeldFile } from "./held.ts";
import { type ChallengeStore, createMemoryChallengeStore } from "./store.ts";

/** Options of {@link createPossessionCheck}: the intake's (same meaning), and the challenges'. */
export interface PossessionCheckOptions {
  /** Where videos and images are stored: where held content is looked for. */
  directories: StorageDirectories;
  /** The annotations client: a verified answer creates or joins the record, as an upload does. */
  client: AnnotationsClient;
  /** How the user ID is read from the token: claim and verification; see {@link userIdFromToken}. */
  auth?: UserIdFromTokenOptions;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/journal/redis`). */
  journal?: MediaJournal;
  /** Gets a line when journal work is handed to the background, and when a stored file cannot be read. */
  logger?: LifecycleLogger;
  /** What the journal entry of a verified answer survives, as the intake's. @default "process" */
  durability?: Durability;
  /** Extra or different extensions, as the store's: decides a name's type and the extensions looked at. */
  mediaTypes?: MediaTypeOptions;
  /** The store's custom file name, when it has one: the held file is looked for where it puts files. */
  naming?: StorageNaming;
  /** The largest upload accepted, in bytes: a challenge for a larger size is refused ({@link MediaTooLargeError}). */
  maxBytes?: number;
  /** Where challenges wait for their answer; several hosts need a shared one (`media-intake/possession/redis`). @default createMemoryChallengeStore() */
  store?: ChallengeStore;
  /** How many ranges a challenge asks for (each answer's odds for a partial holder: docs/possession.md). @default 32 */
  ranges?: number;
  /** Each range's length in bytes. @default 4096 */
  rangeBytes?: number;
  /** How long a challenge may be answered, in ms. @default 30_000 */
  ttlMs?: number;
  /**
   * A refused answer rejects no sooner than this many ms after `verify` was called, so that its
   * time does not tell held content (whose ranges are read) from content not held; a verified
   * answer is not delayed. 0 turns it off. @default 100
   */
  refusalFloorMs?: number;
}

/** What a client asks a challenge for: its token, and the media ID, size and name of its file. */
export interface PossessionChallengeRequest {
  /** The caller's JWT (a `Bearer ` prefix is tolerated). */
  token: string | undefined | null;
  /** The media ID of the client's file (16 hex digits). */
  mediaId: string;
  /** Its size in bytes. */
  size: number;
  /** Its file name: decides the media type, and the record's name once the answer is verified. */
  name: string;
}

/** A client's answer to a challenge. */
export interface PossessionAnswer {
  /** The caller's JWT: the same user as the one the challenge was issued to. */
  token: string | undefined | null;
  /** The challenge's `id`. */
  challengeId: string;
  /** `answerDigest` of the challenge over the client's file: base64url SHA-256. */
  digest: string;
}

/** Options of one call of a {@link PossessionCheck}. */
export interface PossessionCallOptions {
  /** Aborts the call; it then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** The server's half of the possession check; see {@link createPossessionCheck}. */
export interface PossessionCheck {
  /**
   * Always a challenge for a well-formed request (a valid token, a media ID, a size, a name of a
   * supported type), whether the service holds the content or not: a challenge reveals nothing.
   *
   * @throws {AuthTokenError} a missing or bad token, before anything else.
   * @throws {InvalidMediaIdError} `mediaId` is not 16 hex digits.
   * @throws {InvalidMediaSizeError} `size` is not a non-negative safe integer.
   * @throws {UnsupportedMediaTypeError} the name's extension is not a supported type.
   * @throws {MediaTooLargeError} `size` is over `maxBytes`.
   */
  challenge(request: PossessionChallengeRequest, options?: PossessionCallOptions): Promise<PossessionChallenge>;
  /**
   * Takes the challenge (it is burnt, whatever follows), then verifies the answer: a match has
   * exactly the effect of an upload of those bytes by this caller, and resolves to what
   * `intakeMedia` resolves to (`fileCreated: false`).
   *
   * @throws {AuthTokenError} a missing or bad token, before the challenge is taken.
   * @throws {PossessionNotProvenError} any refusal of the answer, one error whatever the reason, no sooner than `refusalFloorMs` after the call; nothing is created.
   * @throws the intake's errors once the answer is verified (`MediaRecordPendingError`, the client's, `JournalUnavailableError`).
   */
  verify(answer: PossessionAnswer, options?: PossessionCallOptions): Promise<IntakenMedia>;
}

const optionNames = ["directories", "client", "auth", "journal", "logger", "durability", "mediaTypes", "naming", "maxBytes", "store", "ranges", "rangeBytes", "ttlMs", "refusalFloorMs"] as const;

/**
 * The default floor of a refusal: above what a refusal takes on an SSD or a page-cached disk
 * (N reads of 4 KiB, a few ms at most) with room for a loaded host, and small against the upload
 * that follows a refusal (100 ms is 1 MB at 80 Mbit/s).
 */
const DEFAULT_REFUSAL_FLOOR_MS = 100;

/** A challenge ID as issueChallenge makes it (128 bits, base64url), with room to spare: anything else is in no store. */
const challengeIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The server's half of the possession check (docs/possession.md): a client proves it holds a
 * file's bytes, and skips uploading content the service already has. `challenge()` issues a
 * single-use challenge (N random ranges, a nonce, an expiry) bound to the caller, the media ID,
 * the size and the name; `verify()` takes it from the store, finds the stored file of that
 * content (the path the name's extension gives, or a sibling extension of its type, as the store
 * finds duplicates; its size and media ID must be the challenge's), and compares digests in
 * constant time. A match goes through the intake's flow as an upload of those bytes would, with
 * the stored file as the upload (telemetry `media_intake.intake="possession"`); every refusal is
 * one {@link PossessionNotProvenError} and creates nothing.
 *
 * @throws {TypeError} an option is invalid or unknown.
 * @example
 * const possession = createPossessionCheck({ directories, client });
 * const challenge = await possession.challenge({ token, mediaId, size, name: "clip.mp4" });
 * // the client answers with answerDigest(challenge, its file's ranges)
 * const media = await possession.verify({ token, challengeId: challenge.id, digest });
 */
export function createPossessionCheck(options: PossessionCheckOptions): PossessionCheck {
  const check = checkOptionsOf("createPossessionCheck");
  if (options === null || typeof options !== "object") check.fail("options", "an object with `directories` and `client`", options);
  check.known(options, optionNames);
  checkIntakeOptions(options, check);
  const store = options.store ?? createMemoryChallengeStore();
  if (typeof store?.put !== "function" || typeof store?.take !== "function") check.fail("store", "a challenge store (put and take)", store);
  const ranges = check.integer("ranges", options.ranges ?? DEFAULT_RANGES, { min: 1, max: 1024 });
  const rangeBytes = check.integer("rangeBytes", options.rangeBytes ?? DEFAULT_RANGE_BYTES, { min: 1, max: 2 ** 20, unit: "bytes" });
  const ttlMs = check.integer("ttlMs", options.ttlMs ?? DEFAULT_TTL_MS, { min: MINIMUM.timeoutMs, max: 24 * 60 * 60 * 1000, unit: "ms" });
  const refusalFloorMs = check.integer("refusalFloorMs", options.refusalFloorMs ?? DEFAULT_REFUSAL_FLOOR_MS, { min: 0, max: 60_000, unit: "ms" });
  const directories = normalizeStorageDirectories(options.directories);
  const { client, auth, journal, logger, durability, mediaTypes, naming, maxBytes } = options;
  const warn = (fields: Record<string, unknown>, line: string) => logger?.warn?.(fields, line);

  /**
   * The stored file the answer proves, and what its record needs; or the refusal, which names the
   * media ID when the challenge was this caller's (it asked about that ID).
   */
  const prove = async (answer: PossessionAnswer, userId: string, signal: AbortSignal | undefined) => {
    const { challengeId } = answer;
    const kept = typeof challengeId === "string" && challengeIdPattern.test(challengeId) ? await store.take(challengeId) : undefined;
    signal?.throwIfAborted();
    if (kept === undefined || kept.userId !== userId) throw new PossessionNotProvenError();
    const refused = new PossessionNotProvenError(kept.mediaId);
    if (!isAnswerable(kept)) throw refused;
    let name: UploadName;
    try {
      name = resolveUploadName(kept.name, mediaTypes);
    } catch {
      // The extension tables changed since the challenge: not content of a type kept here.
      throw refused;
    }
    const paths = await storedPathsOf(directories, kept.mediaId, name, naming);
    const held = await openHeldFile(paths, kept.mediaId, kept.size, warn);
    try {
      if (!(await answerMatches(kept, held, answer.digest)) || !held) throw refused;
      // What an upload of those bytes under this name would pass: the content check on its head.
      const head = await fileRangeReader(held.handle)(0, Math.min(kept.size, DETECTION_BYTES));
      let detected: DetectedMediaKind | undefined;
      try {
        detected = await checkMediaHead(head, { originalName: kept.name, mediaTypes });
      } catch {
        throw refused;
      }
      return { kept, path: held.path, detected };
    } finally {
      await held?.handle.close().catch(() => {});
    }
  };

  return {
    async challenge(request, callOptions = {}) {
      rejectUnknownOptions(callOptions, ["signal"], "PossessionCheck.challenge");
      const { signal } = callOptions;
      signal?.throwIfAborted();
      if (request === null || typeof request !== "object") throw new TypeError("PossessionCheck.challenge: expected a request with `token`, `mediaId`, `size` and `name`.");
      const userId = await userIdFromToken(request.token, auth);
      const mediaId = normalizeMediaId(request.mediaId);
      const { size } = request;
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidMediaSizeError(size);
      const name = typeof request.name === "string" ? request.name : "";
      resolveUploadName(name, mediaTypes);
      if (maxBytes !== undefined && size > maxBytes) throw new MediaTooLargeError(name, maxBytes);
      const { challenge, kept } = issueChallenge({ userId, mediaId, size, name }, { ranges, rangeBytes, ttlMs });
      signal?.throwIfAborted();
      await store.put(kept);
      return challenge;
    },

    async verify(answer, callOptions = {}) {
      rejectUnknownOptions(callOptions, ["signal"], "PossessionCheck.verify");
      const { signal } = callOptions;
      const started = performance.now();
      let userId: string;
      let proven: Awaited<ReturnType<typeof prove>>;
      try {
        signal?.throwIfAborted();
        if (answer === null || typeof answer !== "object") throw new TypeError("PossessionCheck.verify: expected an answer with `token`, `challengeId` and `digest`.");
        userId = await userIdFromToken(answer.token, auth);
        proven = await prove(answer, userId, signal);
      } catch (error) {
        // Refused before any intake: counted as the intake counts its own ends, without a span
        // (its duration the work's, without the floor: what the floor must stay above).
        recordUpload("possession", outcomeOf(error, signal), (performance.now() - started) / 1000, undefined);
        if (error instanceof PossessionNotProvenError) await untilFloor(started + refusalFloorMs, signal);
        throw error;
      }
      const { kept, path, detected } = proven;
      const { mediaId: id, size } = kept;
      const intakeOptions = { originalName: kept.name, directories, token: answer.token, client, auth, journal, logger, durability, mediaTypes, naming, signal };
      return intakeThrough(
        async (storeOptions, name) => {
          // Journaled as the store journals an upload, before the record is asked for.
          await storeOptions.beforePlace?.(Object.freeze({ id, mediaType: name.mediaType, path, size }));
          // Gone since it was found (retired after another upload's refused record): not held any more.
          if (!(await isFileOfSize(path, size))) throw new PossessionNotProvenError(id);
          return Object.freeze({ id, mediaType: name.mediaType, detected, path, size, name: name.name, created: false });
        },
        intakeOptions,
        { userId, via: "possession" },
      );
    },
  };
}

/** A challenge of this caller's that may be answered now. */
function isAnswerable(kept: KeptChallenge): kept is KeptChallenge & { name: string } {
  return kept.expiresAt > Date.now() && typeof kept.name === "string";
}

/**
 * Resolves at `deadline` (a `performance.now()` time), or at once when `signal` aborts (nobody
 * left to time the answer). A timer may fire a little early: it waits again for what is left.
 */
async function untilFloor(deadline: number, signal: AbortSignal | undefined): Promise<void> {
  for (let left = deadline - performance.now(); left > 0 && !signal?.aborted; left = deadline - performance.now()) {
    await sleep(Math.ceil(left), undefined, signal ? { signal } : {}).catch(() => {});
  }
}

/** How a verify that ended before the intake is counted (docs/observability.md `media_intake.outcome`). */
function outcomeOf(error: unknown, signal: AbortSignal | undefined): UploadOutcome {
  if (signal?.aborted) return isRefusedUpload(signal.reason) ? "refused" : "aborted";
  return isRefusedUpload(error) ? "refused" : "failed";
}

async function isFileOfSize(path: string, size: number): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isFile() && stats.size === size,
    () => false,
  );
}
