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

// Internal: shared with storage and tus, not exported by the package (src/index.ts lists the
// public names above by name).
export { formatFamilies } from "./extensions.ts";
export { DETECTION_BYTES, normalizeMediaTypeOptions } from "./resolve.ts";
