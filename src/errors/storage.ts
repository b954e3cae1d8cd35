import { MediaIntakeError } from "./base.ts";

/** The file name's extension is not a known video or image type (a 415 for an HTTP caller). */
export class UnsupportedMediaTypeError extends MediaIntakeError {
  /** The lowercased extension with its dot, or `""` when the name has none. */
  readonly extension: string;
  /** The file name as given. */
  readonly fileName: string;

  constructor(fileName: string, extension: string) {
    const what = extension === "" ? "it has no extension" : `unsupported extension "${extension}"`;
    super(`Resolving the media type of ${JSON.stringify(fileName)}: ${what}`, { code: "UNSUPPORTED_MEDIA_TYPE" });
    this.name = "UnsupportedMediaTypeError";
    this.extension = extension;
    this.fileName = fileName;
  }
}

/** The bytes are not what the file name says: a `.jpg` that is no image (a 415 for an HTTP caller). */
export class MediaContentMismatchError extends MediaIntakeError {
  /** What the name declared: `"Video"` or `"Image"`. */
  readonly declared: string;
  /** What the bytes look like (e.g. `"video/mp4"`), or `undefined` when unrecognised. */
  readonly detected: string | undefined;

  constructor(fileName: string, declared: string, detected: string | undefined) {
    super(
      `Checking the content of ${JSON.stringify(fileName)}: the name says ${declared}, the bytes are ${detected ?? "no known image or video format"}`,
      { code: "MEDIA_CONTENT_MISMATCH" },
    );
    this.name = "MediaContentMismatchError";
    this.declared = declared;
    this.detected = detected;
  }
}

/** The upload passed `maxBytes`; it was refused, not truncated (a 413 for an HTTP caller). */
export class MediaTooLargeError extends MediaIntakeError {
  /** The limit in bytes. */
  readonly maxBytes: number;

  constructor(fileName: string, maxBytes: number) {
    super(`Storing ${JSON.stringify(fileName)}: larger than the limit of ${maxBytes} bytes`, { code: "MEDIA_TOO_LARGE" });
    this.name = "MediaTooLargeError";
    this.maxBytes = maxBytes;
  }
}

/** A planned storage path would leave the type's directory (`..`, an absolute path, NUL, a symlink). */
export class StoragePathEscapeError extends MediaIntakeError {
  /** The directory the path had to stay in. */
  readonly directory: string;

  constructor(directory: string, candidate: string, reason: string) {
    super(`Planning the storage path ${JSON.stringify(candidate)} in ${directory}: ${reason}`, {
      code: "STORAGE_PATH_ESCAPE",
    });
    this.name = "StoragePathEscapeError";
    this.directory = directory;
  }
}

/**
 * A file with the same media ID but different bytes is already stored. Nothing was overwritten
 * and the upload was not kept (a 409 for an HTTP caller). The ID samples 3 KiB, so files that
 * differ only outside the samples share an ID. The message, which a client sees, names no path:
 * the stored file is in `path`, for the server's log.
 */
export class MediaIdCollisionError extends MediaIntakeError {
  /** The shared media ID. */
  readonly id: string;
  /** The stored file, left as it was. */
  readonly path: string;

  constructor(id: string, path: string) {
    super(`Storing media ${id}: the stored file of this ID holds different bytes (the ID samples 3 KiB of the content); nothing was overwritten`, {
      code: "MEDIA_ID_COLLISION",
    });
    this.name = "MediaIdCollisionError";
    this.id = id;
    this.path = path;
  }
}

/** Writing the upload to disk failed (no space, a read-only directory, ...); nothing was kept. */
export class MediaWriteError extends MediaIntakeError {
  /** The directory or file that was being written. */
  readonly target: string;

  constructor(target: string, reason: string, cause: unknown) {
    super(`Writing ${target}: ${reason}`, { code: "MEDIA_WRITE_FAILED", cause });
    this.name = "MediaWriteError";
    this.target = target;
  }
}
