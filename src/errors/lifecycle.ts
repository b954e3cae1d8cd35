import { MediaIntakeError } from "./base.ts";

/** Processing of this media is already running in this process; it was not started twice. */
export class MediaBusyError extends MediaIntakeError {
  /** The media ID. */
  readonly id: string;

  constructor(id: string) {
    super(`Processing media ${id}: already running in this process`, { code: "MEDIA_BUSY" });
    this.name = "MediaBusyError";
    this.id = id;
  }
}

/**
 * A status change could not be recorded in the annotations service (after the client's
 * retries). `cause` is the client's error. When the processing itself succeeded, its result is
 * kept in `result`, so finished work is not thrown away.
 */
export class MediaStatusUpdateError<Result = unknown> extends MediaIntakeError {
  /** The media ID. */
  readonly id: string;
  /** The status the record was to leave (as this process last knew it). */
  readonly from: number | undefined;
  /** The status that could not be recorded. */
  readonly to: number;
  /** Whether `result` holds the processing's result. */
  readonly hasResult: boolean;
  /** The processing's result, when it succeeded before the update failed. */
  readonly result: Result | undefined;

  constructor(id: string, from: number | undefined, to: number, toName: string, cause: unknown, result?: { value: Result }) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Recording status ${toName} for media ${id}: ${reason}`, { code: "MEDIA_STATUS_UPDATE_FAILED", cause });
    this.name = "MediaStatusUpdateError";
    this.id = id;
    this.from = from;
    this.to = to;
    this.hasResult = result !== undefined;
    this.result = result?.value;
  }
}
