export { MediaIntakeError, isMediaIntakeError } from "./base.ts";
export { InvalidMediaIdError, MediaReadError, MediaSizeMismatchError } from "./media-id.ts";
export {
  MediaContentMismatchError,
  MediaIdCollisionError,
  MediaTooLargeError,
  MediaWriteError,
  StoragePathEscapeError,
  UnsupportedMediaTypeError,
} from "./storage.ts";
export { AuthTokenError, type AuthTokenFailure } from "./auth.ts";
export {
  type AnnotationsCallInfo,
  AnnotationsAuthError,
  AnnotationsHttpError,
  AnnotationsResponseError,
  AnnotationsRouteMissingError,
  AnnotationsUnavailableError,
  MediaConflictError,
  MediaNotFoundError,
  type ProblemDetails,
} from "./annotations.ts";
export { JournalUnavailableError, MediaRecordPendingError, MediaStatusUpdateError } from "./lifecycle.ts";
export { InvalidMediaSizeError, PossessionNotProvenError } from "./possession.ts";
