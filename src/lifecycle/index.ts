export {
  type RecoverInterruptedOptions,
  type RecoveryHandle,
  type RecoveryReport,
  recoverInterrupted,
  startRecovery,
  type StartRecoveryOptions,
} from "./recover.ts";
export { type LifecycleLogger, type SettleReport } from "./settle.ts";
/** @internal For intake and the queue: background settling and the one removal rule. Not part of the package's API. */
export { isDefiniteRefusal, REFUSED_FILE_REMOVED, removeMediaFile, settleInBackground } from "./settle.ts";
export {
  type MediaStatusChange,
  type ProcessingContext,
  type TrackCallOptions,
  type TrackedMedia,
  type TrackedProcessing,
  trackMediaProcessing,
  type TrackMediaProcessingOptions,
} from "./track.ts";
