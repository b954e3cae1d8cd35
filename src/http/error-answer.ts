// Errors as HTTP answers, in one place, so that every framework maps them the same way: the
// status, a stable code, a message a client may see (never a server path, a raw system message
// or a token), and the headers that go with it. The full error is for the server's log.
import { isMediaIntakeError } from "../errors/index.ts";

/** What {@link httpErrorFor} makes of an error (frozen). */
export interface HttpErrorAnswer {
  /** The HTTP status: 4xx for what the client can fix, 5xx for what the server or a service must. */
  readonly status: number;
  /** A stable code for clients to branch on: the library's error code, multer's, or `INTERNAL`. */
  readonly code: string;
  /** A message safe to send: the error's own for 4xx, a fixed sentence for 5xx. */
  readonly message: string;
  /** Headers to send with it (`Retry-After` for a 503). */
  readonly headers: Readonly<Record<string, string>>;
  /** The media ID, when the upload was kept and the client can come back for it. */
  readonly mediaId?: string;
  /** Whether the server should log the error (every 5xx): something is wrong on its side. */
  readonly log: boolean;
}

const clientErrors: Readonly<Record<string, number>> = {
  INVALID_MEDIA_ID: 400,
  MEDIA_SIZE_MISMATCH: 400,
  INVALID_MEDIA_SIZE: 400,
  AUTH_TOKEN_INVALID: 401,
  POSSESSION_NOT_PROVEN: 403,
  MEDIA_NOT_FOUND: 404,
  MEDIA_ID_COLLISION: 409,
  MEDIA_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MEDIA_CONTENT_MISMATCH: 415,
};

const serverErrors: Readonly<Record<string, { status: number; message: string }>> = {
  MEDIA_RECORD_PENDING: { status: 503, message: "The upload is kept, but its record could not be confirmed yet; it is created shortly. Retry, or read the media by its ID later." },
  ANNOTATIONS_UNAVAILABLE: { status: 503, message: "The annotations service cannot be reached; try again later." },
  ANNOTATIONS_ROUTE_MISSING: { status: 503, message: "The annotations service is misconfigured on the server's side (its route is missing); try again later." },
  ANNOTATIONS_HTTP_ERROR: { status: 502, message: "The annotations service refused or failed the request." },
  ANNOTATIONS_BAD_RESPONSE: { status: 502, message: "The annotations service answered something unreadable." },
  MEDIA_STATUS_UPDATE_FAILED: { status: 502, message: "The media's processing status could not be recorded." },
  JOURNAL_UNAVAILABLE: { status: 503, message: "The server cannot record work in progress right now; nothing was kept. Try again later." },
};

/** File-system codes that mean the disk is full: 507 Insufficient Storage. */
const noRoom = new Set(["ENOSPC", "EDQUOT"]);
/** File-system codes that mean a storage folder cannot be written now (read-only, no permission, gone): 503. */
const cannotWrite = new Set(["EROFS", "EACCES", "EPERM", "ENOENT", "ENOTDIR", "EIO"]);
const storageUnavailable = "The server cannot write to its storage right now; nothing was kept. Try again later.";

/** multer's limit codes, by what they mean here. */
const multerLimits: Readonly<Record<string, number>> = {
  LIMIT_PART_COUNT: 400,
  LIMIT_FILE_COUNT: 400,
  LIMIT_FIELD_KEY: 400,
  LIMIT_FIELD_VALUE: 400,
  LIMIT_FIELD_COUNT: 400,
  LIMIT_UNEXPECTED_FILE: 400,
  MISSING_FIELD_NAME: 400,
};

function answer(status: number, code: string, message: string, extra: Partial<HttpErrorAnswer> = {}): HttpErrorAnswer {
  return Object.freeze({ status, code, message, headers: Object.freeze({ ...(extra.headers ?? {}) }), log: status >= 500, ...(extra.mediaId ? { mediaId: extra.mediaId } : {}) });
}

/** The system error code under a library error (`cause` chain), e.g. `ENOSPC`. */
function systemCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as Error).cause, depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/** `bytes` for a reader: `10 MiB (10485760 bytes)`, `500 kB (500000 bytes)`, or the count alone when no unit divides it. */
function readableSize(bytes: number): string {
  const units: Array<[string, number]> = [["GiB", 2 ** 30], ["GB", 1e9], ["MiB", 2 ** 20], ["MB", 1e6], ["KiB", 2 ** 10], ["kB", 1e3]];
  const unit = units.find(([, size]) => bytes >= size && bytes % size === 0);
  return unit ? `${bytes / unit[1]} ${unit[0]} (${bytes} bytes)` : `${bytes} bytes`;
}

/**
 * The one message of a 413, whatever refused the upload (the store, multer's engine, a tus
 * `Upload-Length` or PATCH): `The upload is over the limit of 10 MiB (10485760 bytes).`
 */
function overTheLimit(maxBytes: unknown): string {
  return typeof maxBytes === "number" && Number.isSafeInteger(maxBytes) && maxBytes >= 0 ? `The upload is over the limit of ${readableSize(maxBytes)}.` : "The upload is over the limit.";
}

/**
 * The message of a 4xx, as a client may see it: the error's own, less a server path. Only a size
 * mismatch of a file read by its path names one (`Reading /srv/spool/x: …`); it reads
 * `Reading the upload: …` here, the path staying in the error for the log.
 */
function clientMessage(error: Error & { code: string }): string {
  const source = (error as { source?: unknown }).source;
  if (error.code !== "MEDIA_SIZE_MISMATCH" || typeof source !== "string" || source.startsWith("<")) return error.message;
  return error.message.replace(`Reading ${source}:`, "Reading the upload:");
}

/**
 * Maps any error to the HTTP answer a client should get (docs/contract.md errors at the edge): 401 a
 * bad token, 403 a possession challenge's answer refused (one message, whatever the reason), 413
 * too large, 415 a type or content refused, 409 an ID collision, 404 no such media, 400 a
 * malformed media ID or size, 507 a full disk, 503 (with `Retry-After`) the annotations service
 * unreachable or misconfigured (its route missing), a record still pending, a storage folder or
 * the journal not writable, 502 it failing, 500 anything else. multer's errors map to the same
 * codes (`LIMIT_FILE_SIZE` is `MEDIA_TOO_LARGE`). An error that carries an exposable 4xx
 * `status` (http-errors, body parsers) keeps it. Messages of 5xx answers are fixed sentences:
 * the real error is for the log (`log: true`).
 *
 * @example
 * app.use((error, req, res, next) => {
 *   const answer = httpErrorFor(error);
 *   if (answer.log) req.log.error({ err: error }, answer.message);
 *   res.status(answer.status).set(answer.headers).json({ error: { code: answer.code, message: answer.message } });
 * });
 */
export function httpErrorFor(error: unknown): HttpErrorAnswer {
  if ((error as Error | undefined)?.name === "MulterError") {
    const code = String((error as { code?: unknown }).code);
    if (code === "LIMIT_FILE_SIZE") return answer(413, "MEDIA_TOO_LARGE", overTheLimit(undefined));
    return answer(multerLimits[code] ?? 400, code, (error as Error).message);
  }
  if (isMediaIntakeError(error)) {
    const { code } = error;
    if (code === "AUTH_TOKEN_INVALID" && (error as { reason?: string }).reason === "key-unavailable") {
      return answer(503, code, "The keys that verify tokens cannot be fetched; try again later.", { headers: { "retry-after": "5" } });
    }
    if (code === "MEDIA_TOO_LARGE") return answer(413, code, overTheLimit((error as { maxBytes?: unknown }).maxBytes));
    const client = clientErrors[code];
    if (client !== undefined) return answer(client, code, clientMessage(error));
    if (code === "ANNOTATIONS_AUTH_FAILED") {
      return answer((error as { status?: number }).status === 403 ? 403 : 401, code, "The annotations service refused the token.");
    }
    if (code === "MEDIA_STATUS_UPDATE_FAILED" && isMediaIntakeError(error.cause, "ANNOTATIONS_UNAVAILABLE")) {
      return answer(503, code, "The annotations service cannot be reached to record the status; try again later.", { headers: { "retry-after": "5" } });
    }
    if (code === "MEDIA_WRITE_FAILED" && noRoom.has(systemCode(error) ?? "")) {
      return answer(507, "INSUFFICIENT_STORAGE", "The server has no room to store the upload.");
    }
    if (code === "MEDIA_WRITE_FAILED" && cannotWrite.has(systemCode(error) ?? "")) {
      return answer(503, "STORAGE_UNAVAILABLE", storageUnavailable, { headers: { "retry-after": "5" } });
    }
    if (code === "MEDIA_RECORD_PENDING" && isMediaIntakeError(error.cause, "ANNOTATIONS_ROUTE_MISSING")) {
      const id = (error as { id?: string }).id ?? "";
      return answer(503, code, `The upload is kept as media ${id}, but the annotations service is misconfigured on the server's side (its route for records is missing); the record is created once that is fixed. Read the media by its ID later.`, {
        headers: { "retry-after": "5" },
        mediaId: id,
      });
    }
    const kept = code === "JOURNAL_UNAVAILABLE" ? (error as { keptMediaId?: string }).keptMediaId : undefined;
    if (kept !== undefined) {
      return answer(503, code, `The media ${kept} are stored with their record, but their processing could not start: the server cannot record work in progress right now. Try again later.`, {
        headers: { "retry-after": "5" },
        mediaId: kept,
      });
    }
    const server = serverErrors[code];
    if (server) {
      const mediaId = code === "MEDIA_RECORD_PENDING" ? (error as { id?: string }).id : undefined;
      return answer(server.status, code, server.message, { headers: server.status === 503 ? { "retry-after": "5" } : {}, ...(mediaId ? { mediaId } : {}) });
    }
    return answer(500, code, "Internal error.");
  }
  const exposed = error as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown } | undefined;
  const status = Number(exposed?.status ?? exposed?.statusCode);
  if (exposed?.expose === true && status >= 400 && status < 500) {
    return answer(status, status === 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST", String(exposed.message ?? "Bad request."));
  }
  if (noRoom.has(systemCode(error) ?? "")) return answer(507, "INSUFFICIENT_STORAGE", "The server has no room to store the upload.");
  // A raw file-system error (a tus store's, say) of a read-only folder.
  if (systemCode(error) === "EROFS") {
    return answer(503, "STORAGE_UNAVAILABLE", storageUnavailable, { headers: { "retry-after": "5" } });
  }
  return answer(500, "INTERNAL", "Internal error.");
}
