// media-intake/multer: a multer StorageEngine that streams each file through intakeMedia.
import type { IncomingMessage } from "node:http";
import { basename, dirname } from "node:path";
import type { Readable } from "node:stream";
import { MediaIntakeError } from "../errors/index.ts";
import type { IntakeMediaOptions, IntakenMedia } from "../index.ts";
import { checkIntakeOptions, intakeMediaVia, intakeOptionNames } from "../intake/index.ts";
import { checkOptionsOf } from "../utils/index.ts";

declare global {
  // multer's `req.file` and `req.files` entries: the media, once through the engine.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // eslint-disable-next-line @typescript-eslint/no-namespace
    namespace Multer {
      interface File {
        /** The media the file became through {@link mediaIntakeStorage}: its record, `created`, `fileCreated`, `detected`, `size`. */
        media?: IntakenMedia;
      }
    }
  }
}

/** The parts of multer's file object the engine reads. */
export interface MulterIncomingFile {
  fieldname: string;
  originalname: string;
  mimetype: string;
  stream: Readable;
}

/** What the engine adds to `req.file`: multer's usual fields and the media's. */
export interface MediaIntakeFileInfo {
  path: string;
  size: number;
  destination: string;
  filename: string;
  /** The media: its record, `created`, `fileCreated`, `detected`, `size`. */
  media: IntakenMedia;
}

/** Options of {@link mediaIntakeStorage}: `intakeMedia`'s, less what each request brings. */
export interface MediaIntakeStorageOptions extends Omit<IntakeMediaOptions, "token" | "originalName" | "signal" | "onProgress"> {
  /**
   * The caller's JWT for a request.
   * @default the request's `Authorization` header
   */
  token?: (request: IncomingMessage) => string | undefined;
}

/** A multer `StorageEngine`. */
export interface MediaIntakeStorageEngine {
  _handleFile(request: IncomingMessage, file: MulterIncomingFile, callback: (error?: unknown, info?: MediaIntakeFileInfo) => void): void;
  _removeFile(request: IncomingMessage, file: Partial<MediaIntakeFileInfo>, callback: (error: Error | null) => void): void;
}

/** The intakes in flight per request, aborted together by one `close` listener (not one per file). */
const inFlight = new WeakMap<IncomingMessage, Set<AbortController>>();

function uploadsOf(request: IncomingMessage): Set<AbortController> {
  let uploads = inFlight.get(request);
  if (!uploads) {
    const set = new Set<AbortController>();
    inFlight.set(request, (uploads = set));
    request.once("close", () => {
      if (request.complete) return;
      for (const controller of set) controller.abort(new Error("The client disconnected while uploading."));
    });
  }
  return uploads;
}

/**
 * A multer storage engine: each file streams through {@link intakeMedia} (token from the
 * request, type, store, record) and `req.file` gets `path`, `size`, `destination`, `filename`
 * and `media`. multer's `limits.fileSize` keeps working: when it trips, the intake is aborted
 * (nothing kept, never a truncated file) and multer answers `LIMIT_FILE_SIZE` as usual; a client
 * that disconnects mid-upload leaves nothing behind. `_removeFile` (multer calls it when a later
 * part of the same request fails) keeps the media: its record names its file.
 *
 * @example
 * const upload = multer({ storage: mediaIntakeStorage({ client, directories }), limits: { fileSize: 2 ** 30 } });
 * app.post("/upload", upload.single("file"), (req, res) => res.json(req.file?.media));
 */
export function mediaIntakeStorage(options: MediaIntakeStorageOptions): MediaIntakeStorageEngine {
  const check = checkOptionsOf("mediaIntakeStorage");
  check.known(options, [...intakeOptionNames.filter((name) => !["token", "originalName", "signal", "onProgress"].includes(name)), "token"]);
  checkIntakeOptions(options, check);
  check.func("token", options.token);
  const { token: tokenOf = (request: IncomingMessage) => request.headers.authorization, ...intakeOptions } = options;
  return {
    _handleFile(request, file, callback) {
      const controller = new AbortController();
      // busboy ends a file stream early at multer's fileSize limit: that upload must not be kept.
      // multer reports LIMIT_FILE_SIZE itself; this only stops the intake, refused for its size
      // (MEDIA_TOO_LARGE, as the intake's own maxBytes refuses it).
      file.stream.once("limit", () => controller.abort(new MediaIntakeError("The file passed multer's fileSize limit.", { code: "MEDIA_TOO_LARGE" })));
      const uploads = uploadsOf(request);
      uploads.add(controller);
      intakeMediaVia(file.stream, { ...intakeOptions, originalName: file.originalname, token: tokenOf(request), signal: controller.signal }, "multer")
        .then(
          (media) => callback(null, { path: media.path, size: media.size, destination: dirname(media.path), filename: basename(media.path), media }),
          (error: unknown) => {
            file.stream.resume();
            callback(error);
          },
        )
        .finally(() => uploads.delete(controller));
    },
    _removeFile(_request, _file, callback) {
      // The media is kept: its record names its file, and a record never loses its file.
      callback(null);
    },
  };
}
