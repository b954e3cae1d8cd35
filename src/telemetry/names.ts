// The names of the library's telemetry, in one table (docs/observability.md lists each with its
// meaning): OpenTelemetry names, attributes in the `media_intake.` namespace. A dashboard or an
// alert relies on them: change one and it is a breaking change.

/** The instrumentation scope: the tracer's and the meter's name. */
export const SCOPE = "media-intake";

/** Span names. */
export const SPAN = Object.freeze({
  intake: "media_intake.intake",
  store: "media_intake.store",
  record: "media_intake.record",
  track: "media_intake.track",
  tusFinish: "media_intake.tus.finish",
  settle: "media_intake.settle",
});

/** The event a tracked run's span gets per status change. */
export const STATUS_CHANGE_EVENT = "media_intake.status_change";

/** Attribute keys, of spans, events and metrics. Never a token, a user ID, a file name or path, or file contents. */
export const ATTR = Object.freeze({
  mediaId: "media_intake.media_id",
  mediaKind: "media_intake.media_kind",
  size: "media_intake.size",
  outcome: "media_intake.outcome",
  intake: "media_intake.intake",
  status: "media_intake.status",
  previousStatus: "media_intake.status.previous",
  result: "media_intake.result",
  recordCreated: "media_intake.record.created",
  errorCode: "media_intake.error.code",
  settled: "media_intake.settle.settled",
  retried: "media_intake.settle.retried",
  deferred: "media_intake.settle.deferred",
  remaining: "media_intake.settle.remaining",
});

/** Metric names (the Prometheus exporter adds `_total` to counters and the unit to the others). */
export const METRIC = Object.freeze({
  uploads: "media_intake.uploads",
  uploadSize: "media_intake.upload.size",
  uploadDuration: "media_intake.upload.duration",
  statusChanges: "media_intake.status_changes",
  processingDuration: "media_intake.processing.duration",
  journalPending: "media_intake.journal.pending",
  settles: "media_intake.settles",
});

/**
 * How an upload ended: `created` a new record; `duplicate` the record existed (same content);
 * `pending` stored, its record left to the journal's settling; `refused` for what it is or who
 * sent it (a bad token, a type or content refused, too large, or the annotations service refusing
 * its record for good); `aborted` its signal (the client left); `failed` anything else.
 */
export type UploadOutcome = "created" | "duplicate" | "pending" | "refused" | "aborted" | "failed";

/**
 * The entry point an upload came through: `intakeMedia` (a stream), multer's engine, a tus
 * upload's finish, or a verified possession challenge (`createPossessionCheck`: no bytes sent).
 */
export type IntakeVia = "stream" | "multer" | "tus" | "possession";

/** What became of a status change: written now, left to the journal's settling, or lost (refused for good, or no journal). */
export type StatusResult = "applied" | "pending" | "failed";

/** What one settling of a media ID's entries did: `settled` (they are gone), `deferred` (another upload still wants the file), `retried` (failed now, kept for the next pass). */
export type SettleResult = "settled" | "deferred" | "retried";
