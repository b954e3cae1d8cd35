// The storage's one door: intake, tus and lifecycle import storage from here only. The public
// names come first; src/index.ts lists them by name, so the internal ones below stay out of
// the package's API.
export { sanitizeMediaName } from "./name.ts";
export {
  normalizeStorageDirectories,
  planStoragePath,
  type PlanStoragePathInput,
  type StorageDirectories,
  type StorageNameInfo,
  type StorageNaming,
} from "./plan.ts";
export { type ContentVerification } from "./content-check.ts";
export {
  type PlannedMedia,
  storeCompleteFile,
  type StoreCompleteFileOptions,
  type StoredMedia,
  storeMedia,
  type StoreMediaOptions,
  type StoreMediaSource,
  type StoreProgress,
} from "./store.ts";
export { sweepPartials, type SweepPartialsOptions } from "./cleanup.ts";

// Internal: shared with the integrations, not exported by the package.
export { restoreRetiredFile, retireStoredFile } from "./cleanup.ts";
export { checkMediaHead } from "./content-check.ts";
export { storedPathsOf } from "./locate.ts";
export { checkStoreOptions, storeCompleteFileNamed, storeMediaNamed, storeOptionNames } from "./store.ts";
export { resolveUploadName, type UploadName } from "./upload-name.ts";
export { type WritableFile, writeChunksAt } from "./write.ts";
