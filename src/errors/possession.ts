import { MediaIntakeError } from "./base.ts";

/**
 * An answer to a possession challenge was refused (docs/possession.md): the challenge is unknown,
 * used or expired, it was issued to another caller, the service does not hold the content, or
 * the digest is wrong. One message for every reason, which it never names (a reason would tell
 * whether the service holds the content); the client uploads the file instead. Nothing was
 * created. (A 403 for an HTTP caller.)
 */
export class PossessionNotProvenError extends MediaIntakeError {
  /**
   * The media ID the refused challenge was for, when it was one issued to this caller (a wrong
   * answer, content not held, an expired challenge); `undefined` for a challenge unknown, used or
   * another caller's. The caller asked about that ID, so it tells nothing: it is for the host's
   * count of refusals per user and media ID (docs/possession.md), and never in the HTTP answer.
   */
  readonly mediaId: string | undefined;

  constructor(mediaId?: string) {
    super("The possession of the content was not proven; upload the file.", { code: "POSSESSION_NOT_PROVEN" });
    this.name = "PossessionNotProvenError";
    this.mediaId = mediaId;
  }
}

/** A declared file size that is not a size: not a non-negative safe integer (a 400 for an HTTP caller). */
export class InvalidMediaSizeError extends MediaIntakeError {
  /** The rejected value, as text, cut to 64 characters. */
  readonly value: string;

  constructor(value: unknown) {
    const shown = (typeof value === "string" ? JSON.stringify(value) : String(value)).slice(0, 64);
    super(`Expected a size in bytes (an integer from 0 to 2^53 - 1), got ${shown}.`, { code: "INVALID_MEDIA_SIZE" });
    this.name = "InvalidMediaSizeError";
    this.value = shown;
  }
}
