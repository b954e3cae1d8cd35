export { sanitizeMediaName } from "./name.ts";
export {
  normalizeStorageDirectories,
  planStoragePath,
  type PlanStoragePathInput,
  type StorageDirectories,
  type StorageNameInfo,
  type StorageNaming,
} from "./plan.ts";
export {
  type ContentVerification,
  type PlannedMedia,
  storeCompleteFile,
  type StoreCompleteFileOptions,
  type StoredMedia,
  storeMedia,
  type StoreMediaOptions,
  type StoreMediaSource,
  type StoreProgress,
  sweepPartials,
  type SweepPartialsOptions,
} from "./store.ts";
