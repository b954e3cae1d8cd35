export * from "./errors/index.ts";
export * from "./media-id/index.ts";
export * from "./media-type/index.ts";
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
export type { ByteStream } from "./utils/byte-source.ts";
export * from "./auth/index.ts";
export * from "./annotations/index.ts";
export * from "./intake/index.ts";
export * from "./lifecycle/index.ts";
export * from "./http/index.ts";
