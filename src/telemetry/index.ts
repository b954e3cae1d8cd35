// Telemetry: the library's OpenTelemetry spans and metrics, through @opentelemetry/api when it is
// installed (an optional peer), no-ops when it is not. Internal: no name here is part of the
// package's API; docs/observability.md lists what is emitted.
export { ATTR, type IntakeVia, type SettleResult, SPAN, STATUS_CHANGE_EVENT, type StatusResult, type UploadOutcome } from "./names.ts";
export { recordProcessing, recordSettle, recordStatusChange, recordUpload, setJournalPending } from "./metrics.ts";
export { inSpan } from "./spans.ts";
export type { Span } from "@opentelemetry/api";
