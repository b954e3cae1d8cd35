import { stat } from "node:fs/promises";
import type { AnnotationsClient, MediaRecord } from "../annotations/index.ts";
import { checkUserIdFromTokenOptions, userIdFromToken, type UserIdFromTokenOptions } from "../auth/index.ts";
import { isMediaIntakeError, JournalUnavailableError, MediaRecordPendingError } from "../errors/index.ts";
import { fileJournalFor, type JournalEntry, type JournalHandle, type MediaJournal } from "../journal/index.ts";
import { isDefiniteRefusal, type LifecycleLogger, REFUSED_FILE_REMOVED, removeMediaFile, settleInBackground } from "../lifecycle/index.ts";
import { type DetectedMediaKind, mediaTypeName } from "../media-type/index.ts";
import {
  checkStoreOptions,
  normalizeStorageDirectories,
  resolveUploadName,
  type StoredMedia,
  type StoreMediaOptions,
  storeMediaNamed,
  type StoreMediaSource,
  storeOptionNames,
  type UploadName,
} from "../storage/index.ts";
import { ATTR, inSpan, type IntakeVia, recordStatusChange, recordUpload, type Span, SPAN, type UploadOutcome } from "../telemetry/index.ts";
import { checkOptionsOf, type Durability, type OptionChecks } from "../utils/index.ts";

/** Options of {@link intakeMedia}: the store's options and what the record needs. */
export interface IntakeMediaOptions extends Omit<StoreMediaOptions, "beforePlace"> {
  /** The caller's JWT (a `Bearer ` prefix is tolerated): its user ID goes on the record, and it authorises the create. */
  token: string | undefined | null;
  /** The annotations client. */
  client: AnnotationsClient;
  /** How the user ID is read from the token: claim and verification; see {@link userIdFromToken}. */
  auth?: UserIdFromTokenOptions;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/journal/redis`). */
  journal?: MediaJournal;
  /** Gets a line when journal work is handed to the background, and per failure to settle it. */
  logger?: LifecycleLogger;
  /**
   * What the stored file and the file journal's entry survive once the call resolves:
   * `"process"` a crash of the process, `"power"` a power cut too (see {@link Durability}). With
   * `journal` (Redis), the entry lasts as that engine makes it last.
   * @default "process"
   */
  durability?: Durability;
}

/**
 * Every option of {@link intakeMedia}, for the check of unknown ones.
 *
 * @internal shared through intake/index.ts; not exported by the package.
 */
export const intakeOptionNames = [...storeOptionNames.filter((name) => name !== "beforePlace"), "token", "client", "auth", "journal", "logger"] as const;

/**
 * Checks the options an intake takes once for many uploads (all but `originalName`, `token`,
 * `signal` and `onProgress`), as `check`'s function: multer and tus check them when given.
 *
 * @internal shared through intake/index.ts; not exported by the package.
 */
export function checkIntakeOptions(options: Omit<Partial<IntakeMediaOptions>, "originalName" | "token">, check: OptionChecks): void {
  if (!options.client?.media) check.fail("client", "an annotations client", options.client);
  normalizeStorageDirectories(options.directories as IntakeMediaOptions["directories"], check);
  checkUserIdFromTokenOptions(options.auth, check.nested("auth"));
  checkStoreOptions(options, check);
}

/** The media an intake produced: its record and what the store saw (frozen). */
export interface IntakenMedia extends MediaRecord {
  /** `false` when the record existed already: a re-upload of the same content. */
  readonly created: boolean;
  /** `true` only when this upload's bytes were kept as a new file (`false` for a duplicate of stored content). */
  readonly fileCreated: boolean;
  /** What the bytes look like; see {@link detectMediaKind}. */
  readonly detected: DetectedMediaKind | undefined;
  /** Size in bytes. */
  readonly size: number;
  /**
   * The file of the content under the current folders, the one to read (detection): the
   * record's `path`, or the file this upload kept when the record names a file that is not
   * there (a moved volume, or another deployment's folder on a shared annotations service).
   */
  readonly file?: string;
}

/**
 * The whole upload-to-record flow (docs/contract.md "The job"):
 * 1. the user ID from the token: a bad token fails before a byte is written ({@link AuthTokenError});
 * 2. the type from the name, before a byte is written ({@link UnsupportedMediaTypeError});
 * 3. {@link storeMedia} streams the bytes to their persistent path (the same content already
 *    stored, under any extension of its type, is kept instead: one content, one file);
 * 4. the record is created with status New; when it exists already (a re-upload, or the same
 *    content from another user: one record per content), the existing record is returned and
 *    a file this upload added beside the one it names is removed.
 *
 * The step between the file and its record is journaled, so nothing is lost:
 * - a definite refusal of the create (a 4xx other than 408, 409, 429, with the contract's
 *   problem body unless a 401 or 403) removes the stored file only when the service then says
 *   that no record names it (a 404 with a problem body to `GET /api/media/{id}`) and no other
 *   upload of the content wants it, logged at `warn` with the refusal; it rethrows;
 * - an outcome that is not known (a timeout, a reset, a 5xx, an unreadable answer, a 4xx
 *   without a problem body, an abort), or a create route that is missing (a 404 or 405 to
 *   `POST /api/media`: a wrong base URL, logged at `error`) keeps the file: the record is
 *   created in the background as soon as the service answers, and the call rejects with
 *   {@link MediaRecordPendingError} (or `signal.reason`);
 * - a crash: {@link recoverInterrupted} or {@link startRecovery} settles it in any process.
 *
 * @example
 * const media = await intakeMedia(req, { originalName: "clip.MP4", token: req.headers.authorization, client, directories });
 */
export async function intakeMedia(source: StoreMediaSource, options: IntakeMediaOptions): Promise<IntakenMedia> {
  return intakeMediaVia(source, options, "stream");
}

/**
 * {@link intakeMedia}, its telemetry naming the entry point the upload came through (multer's
 * engine names itself).
 *
 * @internal shared through intake/index.ts; not exported by the package.
 */
export async function intakeMediaVia(source: StoreMediaSource, options: IntakeMediaOptions, via: IntakeVia): Promise<IntakenMedia> {
  const check = checkOptionsOf("intakeMedia");
  check.known(options, intakeOptionNames);
  check.string("originalName", options?.originalName);
  checkIntakeOptions(options, check);
  return intakeThrough((storeOptions, name) => storeMediaNamed(source, storeOptions, name), options, { via });
}

/** What an intake saw on its way, for its telemetry: the stored media, and whether its record was left to the journal. */
interface IntakeSeen {
  stored: StoredMedia | undefined;
  pending: boolean;
}

/** Codes of a refusal for what the upload is or who sent it (a 4xx at the edge). */
const refusedCodes = new Set(["AUTH_TOKEN_INVALID", "UNSUPPORTED_MEDIA_TYPE", "MEDIA_CONTENT_MISMATCH", "MEDIA_TOO_LARGE", "MEDIA_SIZE_MISMATCH", "INVALID_MEDIA_ID", "POSSESSION_NOT_PROVEN"]);

/**
 * Whether an error refuses the upload for what it is or who sent it.
 *
 * @internal shared through intake/index.ts (the possession check counts its refusals alike); not exported by the package.
 */
export function isRefusedUpload(error: unknown): boolean {
  // The keys that verify tokens out of reach is the server's trouble, not the caller's token.
  return isMediaIntakeError(error) && refusedCodes.has(error.code) && (error as { reason?: string }).reason !== "key-unavailable";
}

/** How an intake that rejected ended (docs/observability.md `media_intake.outcome`). */
function failedOutcome(error: unknown, seen: IntakeSeen, signal: AbortSignal | undefined): UploadOutcome {
  if (seen.pending) return "pending";
  // Stopped by its signal: a refusal when the reason is one (multer's fileSize limit), as on every entry point.
  if (signal?.aborted) return isRefusedUpload(signal.reason) ? "refused" : "aborted";
  if (isDefiniteRefusal(error) || isRefusedUpload(error)) return "refused";
  return "failed";
}

/** The intake's span attributes and metrics, once it has ended. */
function observeIntake(span: Span | undefined, via: IntakeVia, outcome: UploadOutcome, started: number, stored: StoredMedia | undefined): void {
  recordUpload(via, outcome, (performance.now() - started) / 1000, stored?.size);
  if (!span) return;
  span.setAttribute(ATTR.intake, via);
  span.setAttribute(ATTR.outcome, outcome);
  if (stored) span.setAttributes(storedAttributes(stored));
}

function storedAttributes(stored: StoredMedia) {
  return { [ATTR.mediaId]: stored.id, [ATTR.mediaKind]: mediaTypeName(stored.mediaType), [ATTR.size]: stored.size };
}

/**
 * The intake flow of {@link intakeMedia} around any store step that honours `beforePlace`
 * (`storeMedia` of a stream, or `storeCompleteFile` of a finished resumable upload): the same
 * token check, journal and record rules. `overrides.userId` stands for the token's user when
 * the uploader is not there (the token is then the client's own). The upload's name is
 * resolved here, once per upload, and handed to `store` to pass on (`storeMediaNamed`,
 * `storeCompleteFileNamed`) rather than resolved again down the store.
 *
 * @internal shared through intake/index.ts; not exported by the package.
 */
export function intakeThrough(
  store: (options: StoreMediaOptions, name: UploadName) => Promise<StoredMedia>,
  options: IntakeMediaOptions,
  overrides: { userId?: string; via?: IntakeVia } = {},
): Promise<IntakenMedia> {
  const via = overrides.via ?? "stream";
  const started = performance.now();
  const seen: IntakeSeen = { stored: undefined, pending: false };
  return inSpan(SPAN.intake, async (span) => {
    try {
      const media = await runIntake(store, options, overrides.userId, seen);
      observeIntake(span, via, media.created ? "created" : "duplicate", started, seen.stored);
      return media;
    } catch (error) {
      observeIntake(span, via, failedOutcome(error, seen, options.signal), started, seen.stored);
      throw error;
    }
  });
}

async function runIntake(
  store: (options: StoreMediaOptions, name: UploadName) => Promise<StoredMedia>,
  options: IntakeMediaOptions,
  givenUserId: string | undefined,
  seen: IntakeSeen,
): Promise<IntakenMedia> {
  const { token, client, auth, journal: givenJournal, logger, ...storeOptions } = options;
  // A background finish (a resumable upload a crash left) names the uploader it recorded.
  const userId = givenUserId ?? (await userIdFromToken(token, auth));
  const name = resolveUploadName(storeOptions.originalName, storeOptions.mediaTypes);
  // The store's setting is the journal's: the entry describes the file, and lasts as long.
  const durability = storeOptions.durability ?? (storeOptions.fsync === true ? "power" : "process");
  const journal = givenJournal ?? fileJournalFor(storeOptions.directories, { durability });
  const { signal } = storeOptions;

  let entry: JournalHandle | undefined;
  const drop = async () => {
    await entry?.remove().catch((error: unknown) => logger?.warn?.({ error: (error as Error)?.message }, "media journal entry not removed"));
  };
  const handOver = async (id: string, refused = false) => {
    try {
      await entry?.update({ state: "settle", ...(refused ? { refused } : {}) });
      settleInBackground(journal, client, logger);
    } catch (error) {
      logger?.warn?.({ id, error: (error as Error)?.message }, "media journal entry not handed over");
    }
  };

  let stored: StoredMedia;
  try {
    stored = await inSpan(SPAN.store, async (span) => {
      const placed = await store(
        {
          ...storeOptions,
          beforePlace: async ({ id, path, mediaType }) => {
            // Journaled before the file takes its name: whatever happens next, someone settles it.
            // A journal that cannot be written refuses the upload (a 503), whatever its engine threw.
            entry = await addToJournal(journal, {
              kind: "intake",
              id,
              path,
              mediaType,
              userId,
              name: name.name,
              state: "active",
              at: Date.now(),
            });
          },
        },
        name,
      );
      span?.setAttributes(storedAttributes(placed));
      return placed;
    });
  } catch (error) {
    await drop();
    if (isMediaIntakeError(error, "MEDIA_ID_COLLISION")) {
      // Other bytes under a stored ID: an edited file, a damaged stored one, or a forged file that
      // probes for the content or squats its ID (docs/possession.md): the operator's to watch, by user.
      logger?.warn?.({ id: (error as { id?: string }).id, userId }, "media ID collision: an upload's bytes differ from the stored file of its ID; refused (409)");
    }
    throw error;
  }
  seen.stored = stored;

  const bearer = typeof token === "string" ? token : undefined;
  const call = { ...(bearer ? { token: bearer } : {}), ...(signal ? { signal } : {}) };
  const ownKeys = new Set(entry ? [entry.key] : []);
  let made: { record: MediaRecord; created: boolean };
  try {
    made = await inSpan(SPAN.record, async (span) => {
      span?.setAttribute(ATTR.mediaId, stored.id);
      const answer = await client.media.createOrGet({ id: stored.id, name: stored.name, path: stored.path, mediaType: stored.mediaType, userId }, call);
      span?.setAttribute(ATTR.recordCreated, answer.created);
      return answer;
    });
    if (made.created) recordStatusChange("New", "applied");
  } catch (error) {
    // A refusal after a retried POST is no proof: the first attempt may have landed. The
    // background settling reads the record before it decides (never creating it).
    if (!signal?.aborted && isDefiniteRefusal(error)) recordStatusChange("New", "failed");
    if (!signal?.aborted && isDefiniteRefusal(error) && error.attempts > 1) {
      await handOver(stored.id, true);
      throw error;
    }
    if (!signal?.aborted && isDefiniteRefusal(error)) {
      try {
        // Whoever wrote it: a file no record and no other upload relies on would be an orphan.
        // Another upload still wanting it decides later (it may be refused too).
        const removal = await removeMediaFile(journal, client, stored.id, stored.path, ownKeys, call);
        if (removal === "removed") logger?.warn?.({ id: stored.id, path: stored.path, error: error.message }, REFUSED_FILE_REMOVED);
        if (removal === "wanted-by-upload") await handOver(stored.id, true);
        else await drop();
      } catch (cleanupError) {
        // Whether a record relies on the file could not be read: settled in the background.
        logger?.warn?.({ id: stored.id, error: (cleanupError as Error)?.message }, "refused upload's file not removed yet");
        await handOver(stored.id, true);
      }
      throw error;
    }
    await handOver(stored.id);
    seen.pending = true;
    recordStatusChange("New", "pending");
    if (isMediaIntakeError(error, "ANNOTATIONS_ROUTE_MISSING")) {
      // A misconfiguration, not a refusal: the file is kept until the route answers.
      const fields = { id: stored.id, error: error.message };
      const line = "the annotations service has no route POST /api/media (check the client's baseUrl); the upload is kept and its record created once the route answers";
      if (logger?.error) logger.error(fields, line);
      else logger?.warn?.(fields, line);
    }
    if (signal?.aborted) throw signal.reason;
    throw new MediaRecordPendingError(stored.id, stored.path, error);
  }

  let fileCreated = stored.created;
  // The record names a file that is not here: this upload's file is kept, the one to read.
  const recordFileHere = made.record.path === stored.path || (await isFile(made.record.path));
  if (!recordFileHere) logger?.warn?.({ id: stored.id, recordPath: made.record.path, path: stored.path }, "the record names a file that is not here; this upload's file is kept");
  // One content, one file: the record names another file of the same content.
  if (stored.created && made.record.path !== stored.path && recordFileHere) {
    try {
      const removal = await removeMediaFile(journal, client, stored.id, stored.path, ownKeys, call);
      if (removal === "removed") fileCreated = false;
      // Another upload is placing the same content right now: the settler looks again after it.
      if (removal === "wanted-by-upload") {
        await handOver(stored.id);
        entry = undefined;
      }
    } catch (error) {
      logger?.warn?.({ id: stored.id, error: (error as Error)?.message }, "duplicate file not removed yet");
      await handOver(stored.id);
      entry = undefined;
    }
  }
  await drop();
  const file = recordFileHere ? made.record.path : stored.path;
  return Object.freeze({ ...made.record, created: made.created, fileCreated, detected: stored.detected, size: stored.size, file });
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isFile(),
    () => false,
  );
}

/** `journal.add`, its failure a {@link JournalUnavailableError} (kept as is when the engine threw one). */
async function addToJournal(journal: MediaJournal, entry: JournalEntry): Promise<JournalHandle> {
  try {
    return await journal.add(entry);
  } catch (error) {
    if (isMediaIntakeError(error, "JOURNAL_UNAVAILABLE")) throw error;
    throw new JournalUnavailableError(`Journaling the upload of media ${entry.id}`, journal.location, error);
  }
}
