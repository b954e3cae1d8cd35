import { MediaIntakeError } from "./base.ts";

/**
 * The stored upload's record could not be confirmed: the create's outcome is not known (a
 * timeout, a reset, a 5xx, an answer that could not be read, an abort after it was sent), or the
 * create's route is missing (`cause` an {@link AnnotationsRouteMissingError}: a misconfiguration
 * of the service's base URL, kept as in an outage). The
 * file is kept and journaled, and the record is created in the background (or found to exist)
 * as soon as the service answers: a retry of the upload, or `GET` of the ID later, finds it.
 * `cause` is the client's error. (A 503 with `Retry-After` for an HTTP caller.)
 */
export class MediaRecordPendingError extends MediaIntakeError {
  /** The media ID. */
  readonly id: string;
  /** Where the file is kept. */
  readonly path: string;

  constructor(id: string, path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const missing = (cause as { code?: unknown } | undefined)?.code === "ANNOTATIONS_ROUTE_MISSING";
    const what = missing ? `the annotations service has no route for it (${reason})` : `the outcome is not known (${reason})`;
    super(`Creating the record of media ${id}: ${what}; the file is kept and the record will be settled in the background`, {
      code: "MEDIA_RECORD_PENDING",
      cause,
    });
    this.name = "MediaRecordPendingError";
    this.id = id;
    this.path = path;
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

/**
 * The journal cannot be written or read now: its folder is read-only, full or gone, or a sync
 * of its log failed. A change that failed is not known to be durable, so it is not the caller's:
 * a failed `add` leaves no entry, and the work it was to cover should not start (an upload is
 * refused before its file takes its name). Transient: it heals by itself once the journal can be
 * written (a 503 with `Retry-After` for an HTTP caller). `cause` is the system's error.
 */
export class JournalUnavailableError extends MediaIntakeError {
  /** Where the journal lives (its folder). */
  readonly location: string;
  /**
   * Set when media were kept before the journal failed: a tracked run that could not start, its
   * media stored with their record (still New). Unset for an upload refused with nothing kept.
   */
  readonly keptMediaId?: string;

  constructor(doing: string, location: string, cause: unknown, options: { keptMediaId?: string } = {}) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${doing} (${location}): ${reason}`, { code: "JOURNAL_UNAVAILABLE", cause });
    this.name = "JournalUnavailableError";
    this.location = location;
    if (options.keptMediaId !== undefined) this.keptMediaId = options.keptMediaId;
  }
}
