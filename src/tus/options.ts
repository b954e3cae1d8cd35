// The options of createTusIntake: their type, their checks, and the start-time check that a
// finished upload can be linked (never copied) into the storage directories.
import type { EventEmitter } from "node:events";
import { mkdirSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import type { AnnotationsClient } from "../annotations/index.ts";
import type { UserIdFromTokenOptions } from "../auth/index.ts";
import { checkIntakeOptions, type IntakenMedia } from "../intake/index.ts";
import type { MediaJournal } from "../journal/index.ts";
import type { LifecycleLogger } from "../lifecycle/index.ts";
import type { MediaTypeOptions } from "../media-type/index.ts";
import { normalizeStorageDirectories, type StorageDirectories, type StorageNaming } from "../storage/index.ts";
import { checkOptionsOf, type Durability, durabilityOf, MINIMUM, showValue } from "../utils/index.ts";
import type { TusLocker } from "./redis-locker.ts";
import type { TusSweepReport } from "./sweep.ts";

/**
 * What {@link TusIntake.server} offers: the events of the @tus/server instance (`EVENTS.POST_CREATE`,
 * …). Typed here, not as @tus/server's `Server`, whose types reach srvx's (aws-lambda, Bun, Deno):
 * a project that type-checks with `skipLibCheck: false` would fail on them.
 */
export interface TusServerEvents extends Pick<EventEmitter, "on" | "once" | "off" | "removeListener" | "listenerCount"> {}

/** The endpoint, to mount in any Node HTTP framework. */
export interface TusIntake {
  /**
   * The Node request handler. Mount it where the URL is not rewritten: Express
   * `app.all(["/files", "/files/*splat"], tus.handle)`, not `app.use("/files", …)`.
   */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The @tus/server instance, for its events (`EVENTS.POST_CREATE`, … of @tus/server). */
  readonly server: TusServerEvents;
  /** Where partial uploads live. */
  readonly uploadsDir: string;
  /** Removes expired and refused uploads and finishes complete ones a crash left; runs every `sweepIntervalMs`. */
  sweep(): Promise<TusSweepReport>;
  /** Stops the sweeps (waiting for one under way). */
  close(): Promise<void>;
}

/** Options of {@link createTusIntake}. */
export interface TusIntakeOptions {
  /** Where the media go, as for `intakeMedia`. */
  directories: StorageDirectories;
  /** The annotations client: the caller's token is passed per call; its own token serves background finishes. */
  client: AnnotationsClient;
  /** The route the endpoint answers, as @tus/server takes it (upload URLs are `<path>/<upload id>`). @default "/files" */
  path?: string;
  /** How the user ID is read from the token; see `userIdFromToken`. */
  auth?: UserIdFromTokenOptions;
  /**
   * The largest upload, in bytes: a larger `Upload-Length` is refused at creation (413), a
   * deferred length once the bytes pass it. With or without it, an `Upload-Length` larger than
   * the file system of `uploadsDir` (its total size, however empty) is refused the same way,
   * whatever its number of digits: no upload can be larger than the volume it is written to.
   * @default no limit but the volume's size
   */
  maxBytes?: number;
  /**
   * Where partial uploads live (`<upload id>` and `<upload id>.json`). It must be on the same file
   * system as both storage directories: a finished upload is linked into place, never copied.
   * @default `<videosDir>/.media-intake-uploads`
   */
  uploadsDir?: string;
  /** An upload not finished this long after its creation expires (410), and the sweep removes it. @default 86_400_000 (one day) */
  expireAfterMs?: number;
  /** How often expired uploads are removed and complete ones a crash left are finished; 0: never (call `sweep()` yourself). @default 60_000 */
  sweepIntervalMs?: number;
  /** The tus locker: @tus/server's `MemoryLocker` for one process; `createRedisTusLocker` (media-intake/tus) for several. */
  locker?: TusLocker;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/journal/redis`). */
  journal?: MediaJournal;
  /** Gets a line per background finish, sweep failure and 5xx. */
  logger?: LifecycleLogger;
  /**
   * Runs once a finished upload is media (its record exists), before the upload counts as
   * finished and before the final answer: start detection here. It runs on whatever finishes
   * the upload (the final PATCH or a creation-with-upload POST with the uploader's token; a HEAD
   * with the token it brings; the sweep with `token` undefined), and again on the next finish
   * until it has resolved once: resolve only once detection is durable, a BullMQ job enqueued
   * or a `trackMediaProcessing` run whose AIProcessing is recorded (its journal settles a crash
   * from there). What it returns (JSON) is added to the final response body beside `media`,
   * and kept for a finish that comes again. A throw fails that answer with its error (the media
   * stay; the next HEAD, or the sweep, finishes again). `context.userId` is the uploader's user
   * ID (recorded at creation, known in the background too): when it is not `media.userId`, the
   * upload was a second upload of content another user's record holds (docs/authorization.md).
   */
  onMediaIntaken?: (media: IntakenMedia, context: { readonly token: string | undefined; readonly userId: string }) => Record<string, unknown> | void | Promise<Record<string, unknown> | void>;
  /** As for `storeMedia`. */
  naming?: StorageNaming;
  /** As for `storeMedia`. */
  mediaTypes?: MediaTypeOptions;
  /** As for `storeMedia`. @default "reject" */
  verify?: "reject" | "warn" | "off";
  /**
   * What a finished upload survives once it is answered, as for `storeMedia`, on every step:
   * with `"power"` a new upload's metadata before its 201 (and again when a PATCH declares its
   * length), each PATCH's bytes before its offset is answered, the finish marker, the file and
   * its folder before the final answer, and the file journal's entry, are synced.
   * @default "process"
   */
  durability?: Durability;
  /** @deprecated `durability: "power"` says the same. */
  fsync?: boolean;
}

const optionNames = [
  "directories",
  "client",
  "path",
  "auth",
  "maxBytes",
  "uploadsDir",
  "expireAfterMs",
  "sweepIntervalMs",
  "locker",
  "journal",
  "logger",
  "onMediaIntaken",
  "naming",
  "mediaTypes",
  "verify",
  "durability",
  "fsync",
] as const;
const defaults = { path: "/files", expireAfterMs: 86_400_000, sweepIntervalMs: 60_000 } as const;

/** The options checked, with their defaults, and the directories made. */
export function normalizeOptions(options: TusIntakeOptions) {
  if (options === null || typeof options !== "object") throw new TypeError(`createTusIntake: expected options with \`directories\` and \`client\`, got ${showValue(options)}.`);
  const check = checkOptionsOf("createTusIntake");
  check.known(options, optionNames);
  checkIntakeOptions(options, check);
  const directories = normalizeStorageDirectories(options.directories);
  const maxBytes = options.maxBytes;
  const expireAfterMs = check.integer("expireAfterMs", options.expireAfterMs ?? defaults.expireAfterMs, { min: MINIMUM.timeoutMs, unit: "ms" });
  const sweepIntervalMs = options.sweepIntervalMs ?? defaults.sweepIntervalMs;
  // 0 is no timer (the caller sweeps); any other period is an interval as recovery's are.
  if (sweepIntervalMs !== 0) check.integer("sweepIntervalMs", sweepIntervalMs, { min: MINIMUM.intervalMs, unit: "ms" });
  const path = options.path ?? defaults.path;
  if (typeof path !== "string" || !path.startsWith("/") || path.endsWith("/")) check.fail("path", 'a route such as "/files"', path);
  check.func("onMediaIntaken", options.onMediaIntaken);
  if (options.uploadsDir !== undefined) check.string("uploadsDir", options.uploadsDir);
  const uploadsDir = resolve(options.uploadsDir ?? join(directories.videosDir, ".media-intake-uploads"));
  const durability = durabilityOf(options, check);
  return { ...options, directories, maxBytes, expireAfterMs, sweepIntervalMs, path, uploadsDir, durability };
}

/** The device of a path, or of its nearest ancestor that exists (nothing is created to ask). */
function deviceOf(path: string): number {
  for (let current = path; ; current = dirname(current)) {
    try {
      return statSync(current).dev;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || dirname(current) === current) throw error;
    }
  }
}

/** Refuses, at start, an uploads directory a finished upload could not be linked from; then makes the directories. */
export function checkSameFileSystem(uploadsDir: string, directories: StorageDirectories): void {
  const device = deviceOf(uploadsDir);
  for (const [name, dir] of [["videosDir", directories.videosDir], ["imagesDir", directories.imagesDir]] as const) {
    if (deviceOf(dir) !== device) {
      throw new TypeError(`createTusIntake: expected \`uploadsDir\` (${uploadsDir}) on the same file system as \`${name}\` (${dir}): a finished upload is linked into place, never copied.`);
    }
  }
  for (const dir of [uploadsDir, directories.videosDir, directories.imagesDir]) mkdirSync(dir, { recursive: true });
}
