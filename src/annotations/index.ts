export {
  type AnnotationsCallOptions,
  type AnnotationsClient,
  type AnnotationsClientOptions,
  type AnnotationsLogger,
  type AnnotationsRetryOptions,
  createAnnotationsClient,
  type NewMediaRecord,
} from "./client.ts";
export { type MediaRecord, MediaStatus, mediaStatusName } from "./status.ts";
export { type AnnotationsProbe, PROBE_MEDIA_ID, probeAnnotations } from "./probe.ts";
