// A tus 1.0 endpoint (@tus/server with @tus/file-store) as an intake path equal to the multipart
// one: refusals before a byte is stored, the content check on the first bytes, and a finished
// upload linked into place (never copied) and recorded through the same journal as intakeMedia.
import { randomBytes } from "node:crypto";
import { mkdirSync, statSync } from "node:fs";
import { open, readdir, readFile, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { FileStore } from "@tus/file-store";
import { type Locker, MemoryLocker, Server, Upload } from "@tus/server";
import type { AnnotationsClient } from "../annotations/index.ts";
import { type UserIdFromTokenOptions, userIdFromToken } from "../auth/index.ts";
import { MediaIntakeError, MediaNotFoundError, MediaRecordPendingError } from "../errors/index.ts";
import { httpErrorFor } from "../http/index.ts";
import { type IntakenMedia, intakeThrough } from "../intake/intake.ts";
import type { MediaJournal } from "../lifecycle/journal.ts";
import type { LifecycleLogger } from "../lifecycle/settle.ts";
import type { MediaTypeOptions } from "../media-type/index.ts";
import { DETECTION_BYTES, resolveMediaType } from "../media-type/resolve.ts";
import { normalizeStorageDirectories, type StorageDirectories, type StorageNaming } from "../storage/index.ts";
import { checkMediaHead, storeCompleteFile, writeChunksAt } from "../storage/store.ts";
import { rejectUnknownOptions } from "../utils/options.ts";

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
  /** The tus locker: @tus/server's `MemoryLocker` for one process; `createRedisTusLocker` (media-intake/queue) for several. */
  locker?: Locker;
  /** Another journal than the directories' file journal (the Redis one of `media-intake/queue`). */
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
   * stay; the next HEAD, or the sweep, finishes again).
   */
  onMediaIntaken?: (media: IntakenMedia, context: { token: string | undefined }) => Record<string, unknown> | void | Promise<Record<string, unknown> | void>;
  /** As for `storeMedia`. */
  naming?: StorageNaming;
  /** As for `storeMedia`. */
  mediaTypes?: MediaTypeOptions;
  /** As for `storeMedia`. @default "reject" */
  verify?: "reject" | "warn" | "off";
  /** As for `storeMedia`. @default false */
  fsync?: boolean;
}

/** What one {@link TusIntake.sweep} did. */
export interface TusSweepReport {
  /** Complete uploads that a crash left unfinished, now media. */
  readonly finished: string[];
  /** Uploads removed: expired, refused, or left half-created by a crash. */
  readonly removed: string[];
  /** Uploads that could not be finished now (kept for the next sweep). */
  readonly failed: Array<{ readonly uploadId: string; readonly error: unknown }>;
}

/** The endpoint, to mount in any Node HTTP framework. */
export interface TusIntake {
  /**
   * The Node request handler. Mount it where the URL is not rewritten: Express
   * `app.all(["/files", "/files/*splat"], tus.handle)`, not `app.use("/files", …)`.
   */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The @tus/server instance, for its events (`EVENTS.POST_CREATE`, …). */
  readonly server: Server;
  /** Where partial uploads live. */
  readonly uploadsDir: string;
  /** Removes expired and refused uploads and finishes complete ones a crash left; runs every `sweepIntervalMs`. */
  sweep(): Promise<TusSweepReport>;
  /** Stops the sweeps (waiting for one under way). */
  close(): Promise<void>;
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
  "fsync",
] as const;
const defaults = { path: "/files", expireAfterMs: 86_400_000, sweepIntervalMs: 60_000 } as const;
/** Upload IDs: 128 random bits, hex. */
const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** A complete upload untouched this long, with no finish under way, was left by a crash. */
const ABANDONED_FINISH_MS = 30_000;
/** The headers a browser may read from our own answers. */
const EXPOSED = "Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable, Location, Media-Id";

/** An error @tus/server answers with its own status and body (it reads `status_code` and `body`). */
class TusAnswer extends Error {
  readonly status_code: number;
  readonly body: string;
  /** Headers that go with it (`Retry-After` of a 503). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, extra: { headers?: Readonly<Record<string, string>>; mediaId?: string | undefined } = {}) {
    super(message);
    this.name = "TusAnswer";
    this.status_code = status;
    this.headers = extra.headers ?? {};
    this.body = JSON.stringify({ error: { code, message, ...(extra.mediaId ? { mediaId: extra.mediaId } : {}) } });
  }
}

/** The status, headers and body of a library error, in the JSON shape of every other route. */
function tusAnswerFor(error: unknown): TusAnswer {
  const answer = httpErrorFor(error);
  return new TusAnswer(answer.status, answer.code, answer.message, { headers: answer.headers, mediaId: answer.mediaId });
}

/**
 * What stays of an upload once its finish has begun (`<upload id>.media`), written atomically:
 * `placing` from just before the file is linked into place (its ID known, its record maybe
 * not yet), `done` once the media have a record and `onMediaIntaken` has resolved.
 */
interface FinishMarker {
  readonly state: "placing" | "done";
  readonly mediaId: string;
  /** Where the media file is (or is being) placed. */
  readonly path: string;
  readonly size: number;
  /** The uploader: only they may read it. */
  readonly userId: string;
  /** What `onMediaIntaken` returned, for a finish that comes again. */
  readonly extra?: Record<string, unknown>;
}

function isFinishMarker(value: unknown): value is FinishMarker {
  const marker = value as FinishMarker | null;
  return (
    typeof marker === "object" &&
    marker !== null &&
    (marker.state === "placing" || marker.state === "done") &&
    typeof marker.mediaId === "string" &&
    typeof marker.path === "string" &&
    typeof marker.userId === "string" &&
    Number.isSafeInteger(marker.size)
  );
}

/** @tus/server's own refusals, by status, as codes a client can branch on. */
const tusCodes: Readonly<Record<number, string>> = {
  400: "BAD_REQUEST",
  403: "FORBIDDEN",
  404: "UPLOAD_NOT_FOUND",
  409: "UPLOAD_OFFSET_MISMATCH",
  410: "UPLOAD_EXPIRED",
  412: "TUS_VERSION_REQUIRED",
  413: "MEDIA_TOO_LARGE",
  423: "UPLOAD_LOCKED",
  460: "CHECKSUM_MISMATCH",
};

function normalizeOptions(options: TusIntakeOptions) {
  if (options === null || typeof options !== "object") throw new TypeError("Expected options with `directories` and `client`.");
  rejectUnknownOptions(options, optionNames, "createTusIntake");
  if (!options.client?.media) throw new TypeError("Expected `client` to be an annotations client.");
  const directories = normalizeStorageDirectories(options.directories);
  const { maxBytes, expireAfterMs = defaults.expireAfterMs, sweepIntervalMs = defaults.sweepIntervalMs, path = defaults.path } = options;
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) throw new TypeError(`Expected \`maxBytes\` to be a positive integer, got ${String(maxBytes)}.`);
  if (!Number.isSafeInteger(expireAfterMs) || expireAfterMs < 1) throw new TypeError(`Expected \`expireAfterMs\` to be a positive integer, got ${String(expireAfterMs)}.`);
  if (!Number.isSafeInteger(sweepIntervalMs) || sweepIntervalMs < 0) throw new TypeError(`Expected \`sweepIntervalMs\` to be a non-negative integer, got ${String(sweepIntervalMs)}.`);
  if (typeof path !== "string" || !path.startsWith("/") || path.endsWith("/")) throw new TypeError(`Expected \`path\` to be a route such as "/files", got ${JSON.stringify(path)}.`);
  if (options.onMediaIntaken !== undefined && typeof options.onMediaIntaken !== "function") throw new TypeError("Expected `onMediaIntaken` to be a function.");
  const uploadsDir = resolve(options.uploadsDir ?? join(directories.videosDir, ".media-intake-uploads"));
  return { ...options, directories, maxBytes, expireAfterMs, sweepIntervalMs, path, uploadsDir };
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
function checkSameFileSystem(uploadsDir: string, directories: StorageDirectories): void {
  const device = deviceOf(uploadsDir);
  for (const [name, dir] of [["videosDir", directories.videosDir], ["imagesDir", directories.imagesDir]] as const) {
    if (deviceOf(dir) !== device) {
      throw new TypeError(`Expected \`uploadsDir\` (${uploadsDir}) on the same file system as \`${name}\` (${dir}): a finished upload is linked into place, never copied.`);
    }
  }
  for (const dir of [uploadsDir, directories.videosDir, directories.imagesDir]) mkdirSync(dir, { recursive: true });
}

/**
 * A tus 1.0 endpoint whose finished uploads become media exactly as `intakeMedia` makes them:
 *
 * - **Refused before a byte is stored**: a missing or bad token (401), a `filename` metadata
 *   whose type is not supported (415), an `Upload-Length` over `maxBytes` or over the size of
 *   the uploads volume (413). A deferred length is capped by `maxBytes` as the bytes arrive
 *   (413, the upload removed).
 * - **The content check on the first bytes**: once the first 4100 bytes are in, they must be
 *   what the name says (415, the upload removed, nothing kept).
 * - **Only its creator** may resume, read or delete an upload, finished or not: another
 *   user's token gets 404, as for an upload that does not exist.
 * - **Finished without a copy**: the ID from three reads of the upload's file, which is then
 *   linked into `<dir>/<id><ext>` with the store's rules, the record created through the same
 *   journal and guarantees as `intakeMedia`, and `onMediaIntaken` run (detection started). The
 *   final response (200 to a PATCH, 201 to a creation-with-upload POST) carries `{ media, ... }`
 *   and a `Media-Id` header; a HEAD of a finished upload answers it complete with `Media-Id`,
 *   so a client whose final response was lost resumes to success.
 * - **Finished whatever stops it**: a finish cut off at any step (a crash, a token that expired
 *   meanwhile, a record not confirmed, a throwing `onMediaIntaken`) is taken up again by the
 *   next HEAD or by the sweep, from where it stopped, down to `onMediaIntaken`.
 * - **Nothing left behind**: a DELETE removes the upload and its metadata; an expired one is
 *   refused (410) and swept; a crash at any step is settled like any intake (a complete upload
 *   a crash left is finished by the sweep, with the uploader it recorded at creation).
 * - **503 with `Retry-After`** while the journal cannot be written (its folder, or Redis): the
 *   upload is kept, and the client's retry finishes it.
 *
 * @example
 * const tus = createTusIntake({ directories, client, maxBytes: 20 * 2 ** 30 });
 * app.all(["/files", "/files/*splat"], tus.handle);
 */
export function createTusIntake(options: TusIntakeOptions): TusIntake {
  const opts = normalizeOptions(options);
  const { directories, client, uploadsDir, maxBytes, logger } = opts;
  checkSameFileSystem(uploadsDir, directories);
  const locker = opts.locker ?? new MemoryLocker();
  const storeOptions = {
    directories,
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    ...(opts.naming ? { naming: opts.naming } : {}),
    ...(opts.mediaTypes ? { mediaTypes: opts.mediaTypes } : {}),
    ...(opts.verify ? { verify: opts.verify } : {}),
    ...(opts.fsync ? { fsync: opts.fsync } : {}),
  };
  const filePath = (uploadId: string) => join(uploadsDir, uploadId);
  const markerPath = (uploadId: string) => join(uploadsDir, `${uploadId}.media`);

  /** The file store, with the content check once the first bytes are in. */
  class CheckedFileStore extends FileStore {
    override async write(readable: Parameters<FileStore["write"]>[0], id: string, offset: number): Promise<number> {
      // The store's own write loop (batched positional writes through pooled buffers), not
      // @tus/file-store's stream pipeline: the upload's offset is the file's size either way.
      if (!UPLOAD_ID.test(id)) throw new TusAnswer(404, "UPLOAD_NOT_FOUND", `No upload ${id}.`);
      const target = await open(filePath(id), "r+").catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new TusAnswer(404, "UPLOAD_NOT_FOUND", `No upload ${id}.`);
        throw error;
      });
      let end: number;
      try {
        end = offset + (await writeChunksAt(target, readable as AsyncIterable<Uint8Array>, offset));
      } finally {
        await target.close();
      }
      if (offset < DETECTION_BYTES) {
        const upload = await this.getUpload(id);
        if (end >= DETECTION_BYTES || end === upload.size) {
          const head = Buffer.alloc(Math.min(end, DETECTION_BYTES));
          const handle = await open(filePath(id), "r");
          try {
            await handle.read(head, 0, head.length, 0);
          } finally {
            await handle.close();
          }
          try {
            await checkMediaHead(head, { originalName: upload.metadata?.filename ?? "", ...storeOptions });
          } catch (error) {
            await removeUpload(id);
            throw error;
          }
        }
      }
      return end;
    }

    /** A finished upload (its file is the media now) reads as complete: @tus/server looks again after a creation-with-upload. */
    override async getUpload(id: string): Promise<Upload> {
      try {
        return await super.getUpload(id);
      } catch (error) {
        const status = (error as { status_code?: number }).status_code;
        if (status !== 404 && status !== 410) throw error;
        const marker = await readMarker(id);
        if (marker?.state !== "done") throw error;
        return new Upload({ id, size: marker.size, offset: marker.size });
      }
    }
  }
  const store = new CheckedFileStore({ directory: uploadsDir, expirationPeriodInMilliseconds: opts.expireAfterMs });

  const removeUpload = async (uploadId: string) => {
    await Promise.all([rm(filePath(uploadId), { force: true }), rm(`${filePath(uploadId)}.json`, { force: true })]);
  };
  /** The finish marker; `undefined` when there is none, or a torn one (never written so by us, but a power cut may). */
  const readMarker = async (uploadId: string): Promise<FinishMarker | undefined> => {
    let text: string;
    try {
      text = await readFile(markerPath(uploadId), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    try {
      const marker: unknown = JSON.parse(text);
      if (isFinishMarker(marker)) return marker;
    } catch {}
    logger?.warn?.({ uploadId }, "tus finish marker unreadable; ignored");
    return undefined;
  };
  /** Written whole or not at all (a temp file renamed over it): a reader never sees half a marker. */
  const writeMarker = async (uploadId: string, marker: FinishMarker) => {
    const temp = `${markerPath(uploadId)}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(temp, JSON.stringify(marker));
      await rename(temp, markerPath(uploadId));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  };
  const readInfo = async (uploadId: string): Promise<{ size?: number; metadata?: Record<string, string | null>; creation_date?: string } | undefined> =>
    JSON.parse(await readFile(`${filePath(uploadId)}.json`, "utf8").catch(() => "null")) ?? undefined;

  /** The media an earlier finish placed before it stopped: its record, or MediaRecordPendingError while the journal has not created it yet. */
  const placedMedia = async (marker: FinishMarker, token: string | undefined): Promise<IntakenMedia> => {
    try {
      const record = await client.media.get(marker.mediaId, token ? { token } : {});
      return Object.freeze({ ...record, created: false, fileCreated: false, detected: undefined, size: marker.size });
    } catch (error) {
      if (error instanceof MediaNotFoundError) throw new MediaRecordPendingError(marker.mediaId, marker.path, error);
      throw error;
    }
  };

  /**
   * Makes a complete upload media, once, under the upload's lock: any process may call it (the
   * final PATCH, a HEAD after a lost answer, the sweep); the first does the work, the others find
   * its marker. A finish that stopped half-way (a crash, a failure) is taken up from its marker.
   * `token` is the uploader's (or undefined in the background: the client's own, with `userId`
   * from the upload's metadata).
   */
  const finishUpload = async (uploadId: string, token: string | undefined): Promise<{ media: IntakenMedia; marker: FinishMarker }> => {
    const lock = locker.newLock(uploadId);
    await lock.lock(AbortSignal.timeout(60_000), () => {});
    try {
      const begun = await readMarker(uploadId);
      if (begun?.state === "done") {
        const record = await client.media.get(begun.mediaId, token ? { token } : {});
        return { media: Object.freeze({ ...record, created: false, fileCreated: false, detected: undefined, size: begun.size }), marker: begun };
      }
      let media: IntakenMedia;
      let userId: string;
      if (begun && !(await exists(filePath(uploadId)))) {
        // Placed (the upload's own name is gone) by a finish that stopped after it.
        media = await placedMedia(begun, token);
        userId = begun.userId;
      } else {
        const upload = await store.getUpload(uploadId);
        if (upload.size === undefined || upload.offset !== upload.size) throw new TusAnswer(409, "UPLOAD_INCOMPLETE", `Finishing upload ${uploadId}: ${upload.offset} of ${upload.size ?? "?"} bytes are in.`);
        const { size } = upload;
        const originalName = upload.metadata?.filename ?? "";
        const owner = upload.metadata?.userId ?? undefined;
        userId = owner ?? (await userIdFromToken(token, opts.auth));
        try {
          media = await intakeThrough(
            (intake) =>
              storeCompleteFile(filePath(uploadId), {
                ...storeOptions,
                originalName,
                // Journaled (the intake), then marked: from here the upload's own name may go at any moment.
                beforePlace: async (placing) => {
                  await intake.beforePlace?.(placing);
                  await writeMarker(uploadId, { state: "placing", mediaId: placing.id, path: placing.path, size, userId });
                },
              }),
            { ...storeOptions, originalName, token, client, ...(opts.auth ? { auth: opts.auth } : {}), ...(opts.journal ? { journal: opts.journal } : {}), ...(logger ? { logger } : {}) },
            token === undefined && owner ? { userId: owner } : {},
          );
        } catch (error) {
          // Placed but its record not confirmed: the journal settles it, and the next finish goes on from the marker.
          if (!(error instanceof MediaRecordPendingError) && (!(await exists(filePath(uploadId))) || isRefusal(error))) {
            await removeUpload(uploadId);
            await rm(markerPath(uploadId), { force: true });
          }
          throw error;
        }
      }
      const extra = (await opts.onMediaIntaken?.(media, { token })) ?? undefined;
      const marker: FinishMarker = { state: "done", mediaId: media.id, path: media.path, size: media.size, userId, ...(extra ? { extra } : {}) };
      await writeMarker(uploadId, marker);
      await removeUpload(uploadId);
      return { media, marker };
    } finally {
      await lock.unlock();
    }
  };

  /**
   * The caller's token (`Authorization`) checked, and for an existing upload, finished or not,
   * that it is theirs: another user gets 404, as for an upload that does not exist. The marker
   * is read only once the upload's metadata is gone (not on every PATCH).
   */
  const authorize = async (token: string | undefined, uploadId: string | undefined) => {
    let userId: string;
    try {
      userId = await userIdFromToken(token, opts.auth);
    } catch (error) {
      throw tusAnswerFor(error);
    }
    if (uploadId) {
      const info = await readInfo(uploadId);
      const owner = info ? info.metadata?.userId : (await readMarker(uploadId))?.userId;
      if (owner && owner !== userId) throw new TusAnswer(404, "UPLOAD_NOT_FOUND", `No upload ${uploadId}.`);
    }
    return { token, userId };
  };

  /**
   * One rule for `Upload-Length`, however many digits: at most `maxBytes`, and at most what the
   * uploads volume can hold (its total size). A statfs per creation, none per chunk.
   */
  const checkUploadLength = async (value: string) => {
    // Not a number: @tus/server's own 400.
    if (!/^\d+$/.test(value)) return;
    const volume = await statfs(uploadsDir).then(
      (fs) => fs.blocks * fs.bsize,
      () => Number.MAX_SAFE_INTEGER,
    );
    const limit = Math.min(maxBytes ?? Number.MAX_SAFE_INTEGER, volume, Number.MAX_SAFE_INTEGER);
    if (BigInt(value) > BigInt(limit)) {
      const what = maxBytes !== undefined && maxBytes <= volume ? `the limit of ${maxBytes} bytes` : `what the uploads volume holds (${volume} bytes)`;
      throw new TusAnswer(413, "MEDIA_TOO_LARGE", `Upload-Length ${value.length > 24 ? `${value.slice(0, 24)}…` : value} is more than ${what}.`);
    }
  };

  const server = new Server({
    path: opts.path,
    datastore: store,
    locker,
    ...(maxBytes !== undefined ? { maxSize: maxBytes } : {}),
    relativeLocation: true,
    exposedHeaders: ["Media-Id"],
    namingFunction: () => randomBytes(16).toString("hex"),
    async onUploadCreate(request, upload: Upload) {
      const filename = upload.metadata?.filename;
      if (!filename) throw new TusAnswer(400, "NO_FILENAME", "Creating an upload: the `filename` metadata is required (it decides the media type).");
      try {
        resolveMediaType(filename, opts.mediaTypes);
      } catch (error) {
        throw tusAnswerFor(error);
      }
      const { userId } = await authorize(request.headers.get("authorization") ?? undefined, undefined);
      // The uploader, recorded with the upload: a finish in the background names them.
      return { metadata: { ...upload.metadata, userId } };
    },
    async onUploadFinish(request, upload) {
      const token = request.headers.get("authorization") ?? undefined;
      const { media, marker } = await finishUpload(upload.id, token);
      // A creation-with-upload keeps its 201, which carries the Location the client needs.
      return {
        ...(request.method === "POST" ? {} : { status_code: 200 }),
        headers: { "Content-Type": "application/json", "Media-Id": media.id },
        body: JSON.stringify({ ...marker.extra, media }),
      };
    },
    async onResponseError(request, error) {
      let answer: TusAnswer;
      if (error instanceof TusAnswer) answer = error;
      else if (error instanceof MediaIntakeError || !(error as { status_code?: number }).status_code) {
        answer = tusAnswerFor(error);
        if (answer.status_code >= 500) logger?.warn?.({ error: (error as Error)?.message, url: request.url }, "tus request failed");
      } else {
        const { status_code, body } = error as { status_code: number; body: string };
        // A deferred length past the limit: the bytes so far are not kept either.
        if (status_code === 413 && request.method === "PATCH") {
          const uploadId = uploadIdOf(new URL(request.url).pathname);
          if (uploadId) await removeUpload(uploadId);
        }
        return { status_code, body: JSON.stringify({ error: { code: tusCodes[status_code] ?? (status_code >= 500 ? "INTERNAL" : "BAD_REQUEST"), message: body.trim() } }) };
      }
      // @tus/server takes a status and a body only: the headers (Retry-After) go on the Node response it then writes.
      const res = (request as { node?: { res?: ServerResponse } }).node?.res;
      if (res && !res.headersSent) for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
      return { status_code: answer.status_code, body: answer.body };
    },
  });

  const uploadIdOf = (pathname: string): string | undefined => {
    if (!pathname.startsWith(`${opts.path}/`)) return undefined;
    const id = pathname.slice(opts.path.length + 1);
    return UPLOAD_ID.test(id) ? id : undefined;
  };

  /** Our own answers (a HEAD of a finished upload, a refusal before tus): tus headers, JSON bodies. */
  const reply = (req: IncomingMessage, res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body?: string) => {
    res.writeHead(status, {
      "Tus-Resumable": "1.0.0",
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Expose-Headers": EXPOSED,
      ...(body ? { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) } : {}),
      // A refused request's body is not read: the connection goes with it.
      ...(status >= 400 && !req.complete ? { Connection: "close" } : {}),
      ...headers,
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL((req as { originalUrl?: string }).originalUrl ?? req.url ?? "/", "http://tus.invalid");
    const uploadId = uploadIdOf(url.pathname);
    try {
      // Every request but a browser's preflight: a valid token, and an existing upload its own.
      if (req.method === "OPTIONS") return await server.handle(req, res);
      const { token } = await authorize(req.headers.authorization, uploadId);
      const length = req.headers["upload-length"];
      if (typeof length === "string") await checkUploadLength(length);
      if (req.method === "HEAD" && uploadId) {
        let marker = await readMarker(uploadId);
        if (marker?.state !== "done") {
          // Complete but not finished, or a finish that stopped half-way: a crash, a final answer
          // lost with the process, a token that expired meanwhile. Finish it now.
          const info = await readInfo(uploadId);
          const size = await stat(filePath(uploadId)).then((s) => s.size, () => undefined);
          if (marker || (info?.size !== undefined && size === info.size)) marker = (await finishUpload(uploadId, token)).marker;
        }
        if (marker) {
          const size = String(marker.size);
          reply(req, res, 200, { "Cache-Control": "no-store", "Upload-Offset": size, "Upload-Length": size, "Media-Id": marker.mediaId });
          return;
        }
      }
    } catch (error) {
      const answer = error instanceof TusAnswer ? error : tusAnswerFor(error);
      if (answer.status_code >= 500) logger?.warn?.({ error: (error as Error)?.message, url: url.pathname }, "tus request failed");
      reply(req, res, answer.status_code, answer.headers, answer.body);
      return;
    }
    await server.handle(req, res);
  };

  let sweeping: Promise<TusSweepReport> | undefined;
  const sweep = () => {
    sweeping ??= sweepUploads().finally(() => (sweeping = undefined));
    return sweeping;
  };
  const sweepUploads = async (): Promise<TusSweepReport> => {
    const report = { finished: [] as string[], removed: [] as string[], failed: [] as Array<{ uploadId: string; error: unknown }> };
    const names = await readdir(uploadsDir).catch(() => [] as string[]);
    const now = Date.now();
    // Temp files of markers a crash cut off mid-write.
    for (const name of names.filter((one) => /^[0-9a-f]{32}\.media\.[0-9a-f]+\.tmp$/.test(one))) {
      const temp = join(uploadsDir, name);
      const written = await stat(temp).catch(() => undefined);
      if (written && now - written.mtimeMs > ABANDONED_FINISH_MS) await rm(temp, { force: true });
    }
    const ids = new Set(names.map((name) => name.replace(/\.(json|media)$/, "")).filter((id) => UPLOAD_ID.test(id)));
    for (const uploadId of ids) {
      try {
        let markerStat = await stat(markerPath(uploadId)).catch(() => undefined);
        const marker = markerStat ? await readMarker(uploadId) : undefined;
        if (markerStat && !marker) {
          // Torn (a power cut): what it said is lost; the upload's own files tell the rest.
          await rm(markerPath(uploadId), { force: true });
          markerStat = undefined;
        }
        if (markerStat && marker?.state === "done") {
          if (now - markerStat.mtimeMs > opts.expireAfterMs) await rm(markerPath(uploadId), { force: true });
          // A finish that wrote its marker and crashed before removing the upload.
          if (names.includes(`${uploadId}.json`)) await removeUpload(uploadId);
          continue;
        }
        const info = await readInfo(uploadId);
        const file = await stat(filePath(uploadId)).catch(() => undefined);
        if (marker && markerStat) {
          // A finish that stopped half-way, untouched for longer than a finish takes: take it up.
          if (now - markerStat.mtimeMs < ABANDONED_FINISH_MS) continue;
          if (now - markerStat.mtimeMs > opts.expireAfterMs) {
            await removeUpload(uploadId);
            await rm(markerPath(uploadId), { force: true });
            report.removed.push(uploadId);
            continue;
          }
          await finishUpload(uploadId, undefined);
          report.finished.push(uploadId);
          continue;
        }
        const created = info?.creation_date ? Date.parse(info.creation_date) : (file?.mtimeMs ?? now);
        if (!info || !file) {
          // Half-created by a crash (a file without its metadata, or the reverse): nothing to resume.
          if (!file || now - created > opts.expireAfterMs || now - file.mtimeMs > ABANDONED_FINISH_MS) {
            await removeUpload(uploadId);
            report.removed.push(uploadId);
          }
          continue;
        }
        if (info.size !== undefined && file.size === info.size) {
          if (now - file.mtimeMs < ABANDONED_FINISH_MS) continue;
          await finishUpload(uploadId, undefined);
          report.finished.push(uploadId);
        } else if (now - created > opts.expireAfterMs) {
          await removeUpload(uploadId);
          report.removed.push(uploadId);
        }
      } catch (error) {
        report.failed.push({ uploadId, error });
        logger?.warn?.({ uploadId, error: (error as Error)?.message }, "tus upload not swept");
      }
    }
    return Object.freeze(report);
  };
  const timer = opts.sweepIntervalMs > 0 ? setInterval(() => void sweep().catch(() => {}), opts.sweepIntervalMs) : undefined;
  timer?.unref();

  return Object.freeze({
    handle,
    server,
    uploadsDir,
    sweep,
    async close() {
      if (timer) clearInterval(timer);
      await sweeping?.catch(() => {});
    },
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A refusal of the upload itself, which no retry changes: the upload goes. */
function isRefusal(error: unknown): boolean {
  const status = httpErrorFor(error).status;
  return error instanceof MediaIntakeError && status >= 400 && status < 500 && status !== 401 && status !== 403;
}
