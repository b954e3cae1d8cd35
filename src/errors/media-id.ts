import { MediaIntakeError } from "./base.ts";

/** A string read from outside (URL, CLI argument, response) is not a media ID (docs/contract.md "Media ID"). */
export class InvalidMediaIdError extends MediaIntakeError {
  /** The rejected value, cut to 64 characters. */
  readonly value: string;

  constructor(value: unknown, options: { allowVirtual?: boolean } = {}) {
    const shown = typeof value === "string" ? value.slice(0, 64) : String(typeof value);
    const virtual = typeof value === "string" && /^v[0-9a-f]{16}$/i.test(value);
    const expected = options.allowVirtual ? "a media ID of 16 hex digits (or V and 16 hex digits)" : "a media ID of 16 hex digits";
    // A virtual ID where only stored content is asked about: say why it is no such ID.
    const why = virtual && !options.allowVirtual ? " (a virtual ID, V and 16 hex digits, names content held in memory only: it is never stored)" : "";
    super(`Expected ${expected}, got ${JSON.stringify(shown)}${why}.`, { code: "INVALID_MEDIA_ID" });
    this.name = "InvalidMediaIdError";
    this.value = shown;
  }
}

/** The media's bytes could not be read: missing file, a directory, an I/O error. */
export class MediaReadError extends MediaIntakeError {
  /** What was being read: a path, `"<file handle>"`, `"<blob>"` or `"<stream>"`. */
  readonly source: string;

  constructor(source: string, reason: string, cause?: unknown) {
    super(`Reading ${source}: ${reason}`, { code: "MEDIA_READ_FAILED", cause });
    this.name = "MediaReadError";
    this.source = source;
  }
}

/** The content's length is not the one declared, or it changed while it was being read. */
export class MediaSizeMismatchError extends MediaIntakeError {
  /** What was being read: a path, `"<fd 3>"`, `"<file handle>"`, `"<bytes>"`, `"<blob>"` or `"<stream>"`. */
  readonly source: string;
  /** The size that was declared or seen first. */
  readonly expectedSize: number;
  /** The size actually seen (a lower bound when the content was longer than declared). */
  readonly actualSize: number;

  constructor(source: string, expectedSize: number, actualSize: number, detail: string) {
    super(`Reading ${source}: ${detail} (expected ${expectedSize} bytes, got ${actualSize})`, {
      code: "MEDIA_SIZE_MISMATCH",
    });
    this.name = "MediaSizeMismatchError";
    this.source = source;
    this.expectedSize = expectedSize;
    this.actualSize = actualSize;
  }
}
