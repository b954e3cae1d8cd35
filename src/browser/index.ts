// media-intake/browser: the client side, for browsers, workers and any runtime with Blob, fetch,
// WebCrypto and WebAssembly (Deno, Bun, Node). ESM only, and nothing of Node: the media ID of a
// Blob or File, the possession check that skips an upload the service has, resumable uploads
// with tus-js-client (an optional peer), and detection followed to its end (docs/browser.md).
export { type ComputeMediaIdOptions, computeMediaId } from "./media-id.ts";
export {
  type AnswerPossessionChallengeOptions,
  answerPossessionChallenge,
  type ChallengeRange,
  type PossessionChallenge,
  type SkipUploadIfStoredOptions,
  type SkipUploadResult,
  skipUploadIfStored,
} from "./possession.ts";
export {
  type ResumableAnswer,
  type ResumableUpload,
  type TusFileReader,
  type TusHttpResponse,
  type TusPreviousUpload,
  type TusUpload,
  type TusUploadClass,
  type TusUploadOptions,
  type TusUrlStorage,
  type UploadResumableOptions,
  uploadResumable,
} from "./resumable.ts";
export { DEFAULT_POLL_RETRY_DELAYS, type FollowDetectionOptions, followDetection } from "./detection.ts";
export { type MediaUpload, type UploadMediaAnswer, type UploadMediaOptions, type UploadState, uploadMedia } from "./upload-media.ts";
export { DetectionStatusUnknownError, UploadRequestError } from "./request-error.ts";
export type { DetectionProgress, UploadAnswer, UploadedMedia } from "./shared.ts";
export type { MediaId } from "../media-id/format.ts";
export { isMediaIntakeError, MediaIntakeError, MediaReadError } from "../errors/index.ts";
