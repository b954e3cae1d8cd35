export { type RecoverInterruptedOptions, type RecoveryReport, recoverInterrupted } from "./recover.ts";
export {
  type LifecycleLogger,
  type MediaStatusChange,
  type ProcessingContext,
  type TrackedMedia,
  trackMediaProcessing,
  type TrackMediaProcessingOptions,
} from "./track.ts";
