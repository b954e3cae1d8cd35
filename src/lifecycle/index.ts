export {
  type RecoverInterruptedOptions,
  type RecoveryHandle,
  type RecoveryReport,
  recoverInterrupted,
  startRecovery,
  type StartRecoveryOptions,
} from "./recover.ts";
export { type LifecycleLogger, type SettleReport } from "./settle.ts";
export {
  type MediaStatusChange,
  type ProcessingContext,
  type TrackCallOptions,
  type TrackedMedia,
  type TrackedProcessing,
  trackMediaProcessing,
  type TrackMediaProcessingOptions,
} from "./track.ts";
