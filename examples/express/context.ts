// What the example app is configured with (DetectionsAppConfig), and what every route shares: the
// configuration with its defaults resolved, the caller of a request, and a record read for them.
import type { Request } from "express";
import { pino, type Logger } from "pino";
import {
  type AnnotationsClient,
  type ChallengeStore,
  type Durability,
  type MediaJournal,
  type MediaRecord,
  type StorageDirectories,
  type UserIdFromTokenOptions,
  userIdFromToken,
} from "../../src/index.ts";
import type { DetectionQueue } from "../../src/queue/index.ts";
import type { Locker } from "@tus/server";
import { type AuthorizeMedia, type DetectionsCaller, isOwnerOrService, mediaNotFound, readAuthorized } from "./authorize.ts";
import type { Detection } from "./detector.ts";
import { createInFlight, type InFlight } from "./in-flight.ts";
import type { ReadinessOptions } from "./readiness.ts";

/** Detection on workers (`npm run example:worker`) through a BullMQ queue on Redis. */
export interface QueuedDetection {
  /** The queue: uploads enqueue their media, and wait for the result. */
  detections: DetectionQueue<Detection[]>;
  /** The Redis journal: intakes are journaled on it, so another host settles one this host left. */
  journal: MediaJournal;
  /** How long a request waits for the result before it answers 202 with where to poll. */
  resultWaitMs: number;
}

export interface DetectionsAppConfig {
  /** The annotations client: each request's own token is passed per call; its own token (the service's) serves background work. */
  client: AnnotationsClient;
  directories: StorageDirectories;
  /** How tokens are checked: with `verify.secret` (HS256) or decoded only. */
  auth: UserIdFromTokenOptions;
  /**
   * The service role: user IDs that may read and rerun every record (`SERVICE_USER_IDS`). Used by
   * the default `authorize` only. @default none
   */
  serviceUserIds?: readonly string[];
  /**
   * Who may read or rerun a record by its ID (`GET /media/:id`, `GET /detections/:jobId`,
   * `POST /detect/:id`), and who sees an upload's record whole (another uploader of the same
   * content sees it without the first uploader's user ID and name). Runs after the token is
   * checked, with the record as the annotations service has it (frozen); `false` answers 404,
   * the answer of an ID that does not exist; a throw answers 500. docs/authorization.md.
   * @default the record's own user, or one of `serviceUserIds` ({@link isOwnerOrService})
   */
  authorize?: AuthorizeMedia;
  maxUploadBytes?: number;
  /**
   * What an answered upload survives (`DURABILITY`), on every intake path: `"process"` a crash
   * of the process, `"power"` a power cut too (docs/guarantees.md, "Durability"). @default "process"
   */
  durability?: Durability;
  /** Simulated GPU time per detection, in ms (the stand-in detector is fast). @default 0 */
  detectorDelayMs?: number;
  /** The detector itself (a real one in a service of yours). @default the stand-in `detect` of detector.ts */
  detector?: (path: string, id: string, signal: AbortSignal) => Promise<Detection[]>;
  /** Request logs and errors. @default a silent logger */
  logger?: Logger;
  /**
   * After an early refusal (415, 413, 401) the rest of the upload is read and dropped, up to
   * this many bytes, so that the client gets the answer on a healthy connection; past it the
   * connection is closed. @default 64 MiB
   */
  drainLimitBytes?: number;
  /** With it, detection runs on workers through the queue; without it, in this process. */
  queue?: QueuedDetection;
  /** The tus locker of `/files`: `createRedisTusLocker` when several processes serve it. @default one in memory */
  tusLocker?: Locker;
  /**
   * Where possession challenges wait for their answer (`POST /possession`): `createRedisChallengeStore`
   * (media-intake/possession/redis) when several processes serve the app, so that an answer may
   * reach another one than its challenge. @default one in memory
   */
  challengeStore?: ChallengeStore;
  /** Possession challenges a user may ask for per minute, counted in this process; past it, 429 with `Retry-After`. @default 60 */
  possessionChallengesPerMinute?: number;
  /**
   * Refused possession answers a user may have per media ID in a sliding hour (challenges awaiting
   * their answer count too), counted in this process; past it, `POST /possession` for that media
   * ID answers 429 with `Retry-After`, and the client uploads. @default 3
   */
  possessionRefusalsPerHour?: number;
  /** Where partial tus uploads live (on the storage volume). @default `<videosDir>/.media-intake-uploads` */
  tusUploadsDir?: string;
  /** A partial tus upload untouched this long after its creation expires. @default one day */
  tusExpireAfterMs?: number;
  /**
   * What `GET /readyz` checks besides the storage folders: the annotations service (named by
   * `annotationsUrl`, probed with `probeClient`, best without retries; else `client`), and
   * Redis when `redisPing` is given. @default the annotations service through `client`
   */
  readiness?: { annotationsUrl?: string; probeClient?: AnnotationsClient; redisPing?: ReadinessOptions["redisPing"]; timeoutMs?: number; minFreeBytes?: number };
}

/** The configuration as the routes use it: its defaults resolved, and what they share. */
export interface AppContext {
  readonly config: DetectionsAppConfig;
  readonly client: AnnotationsClient;
  readonly directories: StorageDirectories;
  readonly auth: UserIdFromTokenOptions;
  readonly durability: Durability;
  readonly maxUploadBytes: number | undefined;
  readonly detectorDelayMs: number;
  readonly drainLimitBytes: number;
  readonly queue: QueuedDetection | undefined;
  readonly logger: Logger;
  /** The requests in flight: each one's signal, and the work a cut of the graceful stop waits for (`app.locals.inFlight`). */
  readonly inFlight: InFlight;
  /**
   * What every intake path (`POST /detect`, `/detect-multer`, `/files`) is given alike. With the
   * queue, intakes are journaled on Redis: another host settles one this host left.
   */
  readonly intake: { client: AnnotationsClient; directories: StorageDirectories; durability: Durability; logger: Logger; journal?: MediaJournal; maxBytes?: number };
  readonly authorize: AuthorizeMedia;
  /** The caller of a request, from its token: a bad or missing one is a 401. */
  callerOf(req: Request): Promise<DetectionsCaller>;
  /** The record of a route's `:mediaId`, when the caller may see it; else the 404 of a missing one. */
  authorizedRecord(req: Request, caller: DetectionsCaller, id: string, notFound?: () => Error): Promise<MediaRecord>;
}

export function appContext(config: DetectionsAppConfig): AppContext {
  const { client, directories, auth, maxUploadBytes, detectorDelayMs = 0, drainLimitBytes = 64 * 2 ** 20, queue, durability = "process" } = config;
  const logger = config.logger ?? pino({ enabled: false });
  const serviceUserIds = [...(config.serviceUserIds ?? [])];
  const authorize: AuthorizeMedia = config.authorize ?? ((record, caller) => isOwnerOrService(record, caller, serviceUserIds));
  return {
    config,
    client,
    directories,
    auth,
    durability,
    maxUploadBytes,
    detectorDelayMs,
    drainLimitBytes,
    queue,
    logger,
    inFlight: createInFlight(),
    intake: { client, directories, durability, logger, ...(queue ? { journal: queue.journal } : {}), ...(maxUploadBytes ? { maxBytes: maxUploadBytes } : {}) },
    authorize,
    callerOf: async (req) => {
      const header = req.headers.authorization;
      const userId = await userIdFromToken(header, auth);
      return { userId, token: String(header).replace(/^\s*Bearer\s+/i, "").trim() };
    },
    authorizedRecord: (req, caller, id, notFound = () => mediaNotFound(id)) => {
      const token = req.headers.authorization;
      return readAuthorized(() => client.media.get(id, token ? { token } : {}), caller, authorize, notFound);
    },
  };
}
