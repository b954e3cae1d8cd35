// The package's API. Folders whose index.ts also hands internal names to other folders
// (media-type, storage, intake, utils, possession) have their public names listed here one by one.
export * from "./errors/index.ts";
export * from "./media-id/index.ts";
export {
  defaultImageExtensions,
  defaultVideoExtensions,
  type DetectedMediaKind,
  detectMediaKind,
  fileExtension,
  MediaType,
  mediaTypeName,
  type MediaTypeOptions,
  resolveMediaType,
} from "./media-type/index.ts";
export {
  type ContentVerification,
  normalizeStorageDirectories,
  type PlannedMedia,
  planStoragePath,
  type PlanStoragePathInput,
  sanitizeMediaName,
  type StorageDirectories,
  type StorageNameInfo,
  type StorageNaming,
  storeCompleteFile,
  type StoreCompleteFileOptions,
  type StoredMedia,
  storeMedia,
  type StoreMediaOptions,
  type StoreMediaSource,
  type StoreProgress,
  sweepPartials,
  type SweepPartialsOptions,
} from "./storage/index.ts";
export type { ByteStream, Durability } from "./utils/index.ts";
export { defaultUserIdClaims, type TokenVerification, userIdFromToken, type UserIdFromTokenOptions } from "./auth/index.ts";
export * from "./annotations/index.ts";
export { type IntakeMediaOptions, type IntakenMedia, intakeMedia } from "./intake/index.ts";
export * from "./journal/index.ts";
export {
  type LifecycleLogger,
  type MediaStatusChange,
  type ProcessingContext,
  type RecoverInterruptedOptions,
  type RecoveryHandle,
  type RecoveryReport,
  recoverInterrupted,
  type SettleReport,
  startRecovery,
  type StartRecoveryOptions,
  type TrackCallOptions,
  type TrackedMedia,
  type TrackedProcessing,
  trackMediaProcessing,
  type TrackMediaProcessingOptions,
} from "./lifecycle/index.ts";
export * from "./http/index.ts";
export {
  answerDigest,
  type ChallengeRange,
  type ChallengeStore,
  type ChallengeSubject,
  createMemoryChallengeStore,
  createPossessionCheck,
  fileRangeReader,
  type KeptChallenge,
  type MemoryChallengeStoreOptions,
  type PossessionAnswer,
  type PossessionCallOptions,
  type PossessionChallenge,
  type PossessionChallengeRequest,
  type PossessionCheck,
  type PossessionCheckOptions,
  type RangeReader,
} from "./possession/index.ts";
