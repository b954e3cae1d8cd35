import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import {
  AnnotationsHttpError,
  AnnotationsRouteMissingError,
  AnnotationsUnavailableError,
  AuthTokenError,
  computeMediaId,
  httpErrorFor,
  InvalidMediaSizeError,
  JournalUnavailableError,
  MediaRecordPendingError,
  MediaTooLargeError,
  MediaWriteError,
  PossessionNotProvenError,
  storeMedia,
  UnsupportedMediaTypeError,
} from "../src/index.ts";
import { storageDirectoriesIn } from "./helpers/fixture.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const call = { method: "POST", path: "/api/media", attempts: 1 };
const systemError = (code: string, path: string) => Object.assign(new Error(`${code}: failed, write '${path}'`), { code, path });

describe("httpErrorFor", () => {
  it("answers every 413 with one sentence that names the limit, in a unit when one divides it", () => {
    const message = (maxBytes: number) => httpErrorFor(new MediaTooLargeError("a.mp4", maxBytes)).message;
    expect(message(10 * 2 ** 20)).toBe("The upload is over the limit of 10 MiB (10485760 bytes).");
    expect(message(2 * 10 ** 9)).toBe("The upload is over the limit of 2 GB (2000000000 bytes).");
    expect(message(1000)).toBe("The upload is over the limit of 1 kB (1000 bytes).");
    expect(message(100_001)).toBe("The upload is over the limit of 100001 bytes.");
  });

  it("answers what the client can fix with 4xx and the error's own message", () => {
    expect(httpErrorFor(new UnsupportedMediaTypeError("a.exe", ".exe"))).toMatchObject({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE", log: false });
    expect(httpErrorFor(new MediaTooLargeError("a.mp4", 10))).toMatchObject({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(httpErrorFor(new AuthTokenError("expired", "the token has expired"))).toMatchObject({ status: 401, code: "AUTH_TOKEN_INVALID" });
  });

  it("answers every refused possession answer with one 403 and one message, and a size that is none with 400", () => {
    const refused = httpErrorFor(new PossessionNotProvenError());
    expect(refused).toEqual({ status: 403, code: "POSSESSION_NOT_PROVEN", message: "The possession of the content was not proven; upload the file.", headers: {}, log: false });
    expect(httpErrorFor(new PossessionNotProvenError())).toEqual(refused);
    expect(httpErrorFor(new InvalidMediaSizeError(-1))).toMatchObject({ status: 400, code: "INVALID_MEDIA_SIZE", message: "Expected a size in bytes (an integer from 0 to 2^53 - 1), got -1." });
    expect(httpErrorFor(new InvalidMediaSizeError("12"))).toMatchObject({ status: 400, message: 'Expected a size in bytes (an integer from 0 to 2^53 - 1), got "12".' });
  });

  it("never shows a server path in a 4xx either: a 409 ID collision, a size mismatch of a file read by its path (the error keeps it for the log)", async () => {
    const root = await makeTempDir();
    const directories = storageDirectoriesIn(root);
    // Same size, same three samples, different bytes outside them: the same media ID.
    const a = Buffer.concat([samplePng(64, 48, 5), Buffer.alloc(20_000, 1)]);
    const b = Buffer.from(a);
    b[2500] = (b[2500] ?? 0) ^ 0xff;
    const first = await storeMedia(a, { originalName: "a.png", directories });
    const collision = await storeMedia(b, { originalName: "b.png", directories }).catch((e: unknown) => e);
    expect(collision).toMatchObject({ code: "MEDIA_ID_COLLISION", path: first.path });
    const conflict = httpErrorFor(collision);
    expect(conflict).toMatchObject({ status: 409, code: "MEDIA_ID_COLLISION", message: expect.stringContaining(first.id) });
    expect(conflict.message).not.toContain(root);

    const spooled = join(root, "spool.bin");
    await writeFile(spooled, a);
    const mismatch = await computeMediaId(spooled, { size: a.length + 1 }).catch((e: unknown) => e);
    expect(mismatch).toMatchObject({ code: "MEDIA_SIZE_MISMATCH", source: spooled, message: expect.stringContaining(spooled) });
    expect(httpErrorFor(mismatch)).toMatchObject({ status: 400, message: `Reading the upload: the file is not its declared size (expected ${a.length + 1} bytes, got ${a.length})` });
  });

  it("answers a full disk with 507, and never shows a path or a system message for a 5xx", () => {
    const full = httpErrorFor(new MediaWriteError("/srv/data/videos", "no space left on device (ENOSPC)", systemError("ENOSPC", "/srv/data/videos/.x.partial")));
    expect(full).toMatchObject({ status: 507, code: "INSUFFICIENT_STORAGE", message: "The server has no room to store the upload.", log: true });
    const readOnly = httpErrorFor(new MediaWriteError("/srv/data/videos", "read-only file system (EROFS)", systemError("EROFS", "/srv/data")));
    expect(readOnly).toEqual({ status: 503, code: "STORAGE_UNAVAILABLE", message: "The server cannot write to its storage right now; nothing was kept. Try again later.", headers: { "retry-after": "5" }, log: true });
    expect(httpErrorFor(systemError("EROFS", "/srv/data/videos/.uploads/x"))).toMatchObject({ status: 503, code: "STORAGE_UNAVAILABLE" });
    const raw = httpErrorFor(systemError("EMFILE", "/srv/data/videos/abc.mp4"));
    expect(raw).toEqual({ status: 500, code: "INTERNAL", message: "Internal error.", headers: {}, log: true });
  });

  it("answers the annotations service's failures with 502/503, Retry-After on 503, the media ID of a kept upload", () => {
    expect(httpErrorFor(new AnnotationsUnavailableError(call, "could not reach the service"))).toMatchObject({ status: 503, headers: { "retry-after": "5" } });
    expect(httpErrorFor(new AnnotationsHttpError(call, 500, "Internal Server Error"))).toMatchObject({ status: 502, code: "ANNOTATIONS_HTTP_ERROR" });
    const pending = httpErrorFor(new MediaRecordPendingError("6a9b7ce7844aa871", "/srv/data/videos/6a9b7ce7844aa871.mp4", new Error("timeout")));
    expect(pending).toMatchObject({ status: 503, code: "MEDIA_RECORD_PENDING", mediaId: "6a9b7ce7844aa871", headers: { "retry-after": "5" } });
    expect(pending.message).not.toContain("/srv");
    expect(httpErrorFor(new AuthTokenError("key-unavailable", "the JWKS could not be fetched"))).toMatchObject({ status: 503 });
    const journal = httpErrorFor(new JournalUnavailableError("Adding to the journal", "/srv/data/videos/.media-intake-journal", systemError("EROFS", "/srv/data")));
    expect(journal).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" }, log: true });
    expect(journal.message).not.toContain("/srv");
  });

  it("answers a create route that is missing (a wrong base URL) with 503, the kept media's ID, never MEDIA_NOT_FOUND or 'nothing was kept'", () => {
    const missing = new AnnotationsRouteMissingError(call, 404, "Not Found");
    expect(missing.message).toBe("POST /api/media: 404 Not Found: the annotations service has no such route (check its base URL)");
    const pending = httpErrorFor(new MediaRecordPendingError("6a9b7ce7844aa871", "/srv/data/images/6a9b7ce7844aa871.png", missing));
    expect(pending).toMatchObject({ status: 503, code: "MEDIA_RECORD_PENDING", mediaId: "6a9b7ce7844aa871", headers: { "retry-after": "5" }, log: true });
    expect(pending.message).toContain("kept as media 6a9b7ce7844aa871");
    expect(pending.message).not.toContain("/srv");
    expect(httpErrorFor(missing)).toMatchObject({ status: 503, code: "ANNOTATIONS_ROUTE_MISSING", headers: { "retry-after": "5" } });
  });

  it("answers a journal that cannot be written with 503 and Retry-After, a full journal folder too, naming no path", () => {
    for (const code of ["EROFS", "EACCES", "ENOSPC", "EIO"]) {
      const answer = httpErrorFor(new JournalUnavailableError("Adding an intake entry of media 6a9b7ce7844aa871", "/srv/data/videos/.media-intake-journal", systemError(code, "/srv/data/videos/.media-intake-journal/x.log")));
      expect(answer).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" }, log: true });
      expect(answer.message).not.toContain("/srv");
    }
  });

  it("answers a journal that cannot be written (Redis down) with 503 and Retry-After, never naming where it lives", () => {
    const down = httpErrorFor(new JournalUnavailableError("Adding a journal entry", "redis media-intake:journal", new Error("connect ECONNREFUSED 10.0.0.7:6379")));
    expect(down).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" }, log: true });
    expect(down.message).not.toMatch(/ECONNREFUSED|10\.0\.0\.7|media-intake:journal/);
  });

  it("answers a journal that cannot be written (Redis down) with 503 and Retry-After, never naming where it lives", () => {
    const down = httpErrorFor(new JournalUnavailableError("Adding a journal entry", "redis media-intake:journal", new Error("connect ECONNREFUSED 10.0.0.7:6379")));
    expect(down).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" }, log: true });
    expect(down.message).not.toMatch(/ECONNREFUSED|10\.0\.0\.7|media-intake:journal/);
  });

  it("maps multer's errors to the same codes, and keeps an exposable 4xx of other middleware", () => {
    const multerError = (code: string) => Object.assign(new Error(code), { name: "MulterError", code });
    expect(httpErrorFor(multerError("LIMIT_FILE_SIZE"))).toMatchObject({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(httpErrorFor(multerError("LIMIT_FILE_COUNT"))).toMatchObject({ status: 400, code: "LIMIT_FILE_COUNT" });
    expect(httpErrorFor(Object.assign(new Error("request entity too large"), { status: 413, expose: true }))).toMatchObject({ status: 413, message: "request entity too large" });
    expect(httpErrorFor(Object.assign(new Error("secret internals"), { status: 400 }))).toMatchObject({ status: 500, message: "Internal error." });
  });
});
