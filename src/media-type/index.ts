export { defaultImageExtensions, defaultVideoExtensions } from "./extensions.ts";
export {
  type DetectedMediaKind,
  detectMediaKind,
  fileExtension,
  MediaType,
  mediaTypeName,
  type MediaTypeOptions,
  resolveMediaType,
} from "./resolve.ts";
