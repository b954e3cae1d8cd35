export { MediaIntakeError, isMediaIntakeError } from "./base.ts";
export { InvalidMediaIdError, MediaReadError, MediaSizeMismatchError } from "./media-id.ts";
