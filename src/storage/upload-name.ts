// An upload's name, resolved once per upload: what it decides is handed down the store rather
// than worked out again at each step.
import { fileExtension, type MediaType, type MediaTypeOptions, resolveMediaType } from "../media-type/index.ts";
import { sanitizeMediaName } from "./name.ts";

/**
 * What an upload's name decides, resolved once per upload and handed down the store: the media
 * type, the extension and the display name.
 *
 * @internal shared through storage/index.ts; not exported by the package.
 */
export interface UploadName {
  /** The name as uploaded. */
  readonly originalName: string;
  /** The extension table the type was resolved with. */
  readonly mediaTypes: MediaTypeOptions | undefined;
  /** Video or Image, from the extension. */
  readonly mediaType: MediaType;
  /** The lowercased last extension, with its dot, or `""`. */
  readonly extension: string;
  /** The display name for the record's Name ({@link sanitizeMediaName}). */
  readonly name: string;
}

/**
 * Resolves an upload's name (frozen): an unsupported type throws as {@link resolveMediaType} does.
 *
 * @internal shared through storage/index.ts; not exported by the package.
 */
export function resolveUploadName(originalName: string, mediaTypes?: MediaTypeOptions): UploadName {
  const mediaType = resolveMediaType(originalName, mediaTypes);
  return Object.freeze({ originalName, mediaTypes, mediaType, extension: fileExtension(originalName), name: sanitizeMediaName(originalName) });
}

/**
 * The name of a store's options: `resolved` when it was resolved from this very name and
 * extension table (by the intake, once per upload), else resolved here.
 *
 * @internal used within storage/ only.
 */
export function uploadNameOf(options: { originalName: string; mediaTypes?: MediaTypeOptions | undefined }, resolved?: UploadName): UploadName {
  if (resolved?.originalName === options.originalName && resolved.mediaTypes === options.mediaTypes) return resolved;
  return resolveUploadName(options.originalName, options.mediaTypes);
}
