// A tus 1.0 endpoint (@tus/server with @tus/file-store) as an intake path equal to the multipart
// one: refusals before a byte is stored, the content check on the first bytes, and a finished
// upload linked into place (never copied) and recorded through the same journal as intakeMedia.
import { randomBytes } from "node:crypto";
import { open, stat, statfs } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { FileStore } from "@tus/file-store";
import type { Upload } from "@tus/server";
import { userIdFromToken } from "../auth/index.ts";
import { AnnotationsRouteMissingError, MediaIntakeError, MediaNotFoundError, MediaRecordPendingError, MediaTooLargeError } from "../errors/index.ts";
import { type IntakenMedia, intakeThrough } from "../intake/index.ts";
import { DETECTION_BYTES, resolveMediaType } from "../media-type/index.ts";
import { checkMediaHead, storeCompleteFileNamed, writeChunksAt } from "../storage/index.ts";
import { ATTR, inSpan, SPAN } from "../telemetry/index.ts";
import { peerModule } from "../utils/index.ts";
import { isRefusal, TusAnswer, tusAnswerFor, tusCodes } from "./answers.ts";
import { type FinishMarker, finishMarkers } from "./finish-marker.ts";
import { checkSameFileSystem, normalizeOptions, type TusIntake, type TusIntakeOptions } from "./options.ts";
import { tusFileStore, tusServer } from "./peers.ts";
import { countSizeRefusal, timedHandle } from "./size-refusals.ts";
import { createTusSweep, type TusSweepReport, UPLOAD_ID } from "./sweep.ts";
import { uploadFiles } from "./upload-files.ts";

export type { TusIntake, TusIntakeOptions, TusServerEvents } from "./options.ts";
export type { TusSweepReport } from "./sweep.ts";

/** The headers a browser may read from our own answers. */
const EXPOSED = "Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable, Location, Media-Id, Retry-After";

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
 *   refused (410) and swept; a creation that fails (507 on a full disk) removes what it made,
 *   and metadata that cannot be read (a creation cut off) is swept once expired, logged once; a
 *   crash at any step is settled like any intake (a complete upload a crash left is finished by
 *   the sweep, with the uploader it recorded at creation).
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
  const { MemoryLocker, Server, Upload } = peerModule(tusServer, "createTusIntake");
  const { FileStore } = peerModule(tusFileStore, "createTusIntake");
  const locker = opts.locker ?? new MemoryLocker();
  const storeOptions = {
    directories,
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    ...(opts.naming ? { naming: opts.naming } : {}),
    ...(opts.mediaTypes ? { mediaTypes: opts.mediaTypes } : {}),
    ...(opts.verify ? { verify: opts.verify } : {}),
    durability: opts.durability,
  };
  const durable = opts.durability === "power";
  const files = uploadFiles(uploadsDir);
  const { filePath, readInfo, remove: removeUpload, syncInfo } = files;
  const markers = finishMarkers(uploadsDir, logger, opts.durability);

  /** The file store, with the content check once the first bytes are in. */
  class CheckedFileStore extends FileStore {
    // A client resuming after a power cut finds its upload, at the offset it was answered (with
    // "power": its metadata synced before the 201). A creation that fails leaves nothing.
    override async create(upload: Upload): Promise<Upload> {
      return files.createCleanly(upload.id, async () => {
        const created = await super.create(upload);
        if (durable) await syncInfo(upload.id);
        return created;
      });
    }

    override async declareUploadLength(id: string, length: number): Promise<void> {
      await super.declareUploadLength(id, length);
      if (durable) await syncInfo(id);
    }

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
        // A Node stream's chunks are written as they are, gathered (it never reuses one it
        // pushed); what has arrived is written whenever nothing more is at hand.
        const stream = readable instanceof Readable ? readable : undefined;
        end = offset + (await writeChunksAt(target, readable as AsyncIterable<Uint8Array>, offset, stream ? { owned: true, moreAtHand: () => stream.readableLength > 0 } : {}));
        // The offset answered is on disk: a client resuming after a power cut sends the rest.
        if (durable) await target.sync();
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
        const marker = await markers.read(id);
        if (marker?.state !== "done") throw error;
        return new Upload({ id, size: marker.size, offset: marker.size });
      }
    }
  }
  const store = new CheckedFileStore({ directory: uploadsDir, expirationPeriodInMilliseconds: opts.expireAfterMs });

  /** The media an earlier finish placed before it stopped: its record, or MediaRecordPendingError while the journal has not created it yet. */
  const placedMedia = async (marker: FinishMarker, token: string | undefined): Promise<IntakenMedia> => {
    try {
      const record = await client.media.get(marker.mediaId, token ? { token } : {});
      return Object.freeze({ ...record, created: false, fileCreated: false, detected: undefined, size: marker.size });
    } catch (error) {
      if (error instanceof MediaNotFoundError || error instanceof AnnotationsRouteMissingError) throw new MediaRecordPendingError(marker.mediaId, marker.path, error);
      throw error;
    }
  };

  /**
   * Makes a complete upload media, once, under the upload's lock: any process may call it (the
   * final PATCH, a HEAD after a lost answer, the sweep); the first does the work, the others find
   * its marker. A finish that stopped half-way (a crash, a failure) is taken up from its marker.
   * `token` is the uploader's (or undefined in the background: the client's own, with `userId`
   * from the upload's metadata). In a span, `media_intake.tus.finish`.
   */
  const finishUpload = (uploadId: string, token: string | undefined) =>
    inSpan(SPAN.tusFinish, async (span) => {
      const finished = await finishNow(uploadId, token);
      span?.setAttributes({ [ATTR.mediaId]: finished.media.id, [ATTR.size]: finished.media.size });
      return finished;
    });
  const finishNow = async (uploadId: string, token: string | undefined): Promise<{ media: IntakenMedia; marker: FinishMarker }> => {
    const lock = locker.newLock(uploadId);
    await lock.lock(AbortSignal.timeout(60_000), () => {});
    try {
      const begun = await markers.read(uploadId);
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
            // The name resolved once, by the intake, and handed down the store.
            (intake, name) =>
              storeCompleteFileNamed(
                filePath(uploadId),
                {
                  ...storeOptions,
                  originalName,
                  // Journaled (the intake), then marked: from here the upload's own name may go at any moment.
                  beforePlace: async (placing) => {
                    await intake.beforePlace?.(placing);
                    await markers.write(uploadId, { state: "placing", mediaId: placing.id, path: placing.path, size, userId });
                  },
                },
                name,
              ),
            { ...storeOptions, originalName, token, client, ...(opts.auth ? { auth: opts.auth } : {}), ...(opts.journal ? { journal: opts.journal } : {}), ...(logger ? { logger } : {}) },
            { via: "tus", ...(token === undefined && owner ? { userId: owner } : {}) },
          );
        } catch (error) {
          // Placed but its record not confirmed: the journal settles it, and the next finish goes on from the marker.
          if (!(error instanceof MediaRecordPendingError) && (!(await exists(filePath(uploadId))) || isRefusal(error))) {
            await removeUpload(uploadId);
            await markers.remove(uploadId);
          }
          throw error;
        }
      }
      const extra = (await opts.onMediaIntaken?.(media, Object.freeze({ token, userId }))) ?? undefined;
      const marker: FinishMarker = { state: "done", mediaId: media.id, path: media.path, size: media.size, userId, ...(extra ? { extra } : {}) };
      await markers.write(uploadId, marker);
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
      const marker = info ? undefined : await markers.read(uploadId);
      // Another user's upload and one that does not exist get the same answer: existence does not leak.
      const owner = info ? info.metadata?.userId : marker?.userId;
      if ((!info && !marker) || (owner && owner !== userId)) throw new TusAnswer(404, "UPLOAD_NOT_FOUND", `No upload ${uploadId}.`);
    }
    return { token, userId };
  };

  /**
   * One rule for `Upload-Length`, however many digits: at most `maxBytes`, and at most what the
   * uploads volume can hold (its total size). A statfs per creation, none per chunk.
   */
  const checkUploadLength = async (value: string) => {
    if (!/^(0|[1-9]\d*)$/.test(value)) {
      const shown = value.length > 24 ? `${value.slice(0, 24)}…` : value;
      throw new TusAnswer(400, "BAD_REQUEST", `Upload-Length ${JSON.stringify(shown)} is not a length: one header, digits only, no leading zero.`);
    }
    const volume = await statfs(uploadsDir).then(
      (fs) => fs.blocks * fs.bsize,
      () => Number.MAX_SAFE_INTEGER,
    );
    const limit = Math.min(maxBytes ?? Number.MAX_SAFE_INTEGER, volume, Number.MAX_SAFE_INTEGER);
    if (BigInt(value) > BigInt(limit)) {
      // Over maxBytes: the 413 of /detect and multer, word for word (httpErrorFor's).
      if (maxBytes !== undefined && maxBytes <= volume) throw tusAnswerFor(new MediaTooLargeError("", maxBytes));
      throw new TusAnswer(413, "MEDIA_TOO_LARGE", `The upload is over what the uploads volume holds (${volume} bytes): Upload-Length ${value.length > 24 ? `${value.slice(0, 24)}…` : value}.`);
    }
  };

  const server = new Server({
    path: opts.path,
    datastore: store,
    locker,
    ...(maxBytes !== undefined ? { maxSize: maxBytes } : {}),
    relativeLocation: true,
    // The upload's ID as our checks read it, and nothing looser: a path that only resembles an
    // upload's (a trailing slash, another case, extra segments) is no upload, so the owner check
    // can never be passed by by spelling the URL differently.
    getFileIdFromRequest: (request) => uploadIdOf(new URL(request.url).pathname),
    exposedHeaders: ["Media-Id", "Retry-After"],
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
        body: JSON.stringify({ ...marker.extra, media: media.userId === marker.userId ? media : withoutOwner(media) }),
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
        if (status_code === 413) countSizeRefusal(request);
        // A deferred length past the limit: the bytes so far are not kept either.
        if (status_code === 413 && request.method === "PATCH") {
          const uploadId = uploadIdOf(new URL(request.url).pathname);
          if (uploadId) await removeUpload(uploadId);
          if (maxBytes !== undefined) return { status_code, body: tusAnswerFor(new MediaTooLargeError("", maxBytes)).body };
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
      const onPath = url.pathname === opts.path;
      // Only the collection (creation) and an upload's own URL, spelled exactly, are tus's.
      if (!onPath && !uploadId) throw new TusAnswer(404, "UPLOAD_NOT_FOUND", "No such upload.");
      const { token } = await authorize(req.headers.authorization, uploadId);
      // An upload is written, never read back (@tus/server's GET would serve a partial file, or
      // one a finish has moved away): its media, once finished, are the service's to serve.
      if (uploadId && req.method !== "HEAD" && req.method !== "PATCH" && req.method !== "DELETE") {
        throw new TusAnswer(405, "METHOD_NOT_ALLOWED", `${req.method} of an upload: an upload takes HEAD, PATCH and DELETE.`, { headers: { Allow: "HEAD, PATCH, DELETE, OPTIONS" } });
      }
      const length = req.headers["upload-length"];
      if (typeof length === "string") await checkUploadLength(length);
      if (req.method === "HEAD" && uploadId) {
        let marker = await markers.read(uploadId);
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
      if (answer.status_code === 413) countSizeRefusal(req);
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
  const sweepUploads = createTusSweep({ uploadsDir, expireAfterMs: opts.expireAfterMs, markers, files, finishUpload: (uploadId) => finishUpload(uploadId, undefined), logger });
  const timer = opts.sweepIntervalMs > 0 ? setInterval(() => void sweep().catch(() => {}), opts.sweepIntervalMs) : undefined;
  timer?.unref();

  return Object.freeze({
    handle: timedHandle(handle),
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

/**
 * The media as a second uploader of the same content sees them (docs/authorization.md): the
 * content's answer, without who uploaded it first and under what name.
 */
function withoutOwner(media: IntakenMedia): Omit<IntakenMedia, "userId" | "name"> {
  const { userId: _userId, name: _name, ...shown } = media;
  return shown;
}
