// The content check: the leading bytes of an upload against the type its name declares.
import { MediaContentMismatchError } from "../errors/index.ts";
import { type DetectedMediaKind, detectMediaKind, fileExtension, formatFamilies, mediaTypeName, type MediaTypeOptions, resolveMediaType } from "../media-type/index.ts";
import type { UploadName } from "./upload-name.ts";

/** How uploaded bytes are checked against the type their name declares. */
export type ContentVerification = "reject" | "warn" | "off";

/**
 * The content check: what the leading bytes are, if they may carry the declared name (the same
 * container family); a mismatch throws ({@link MediaContentMismatchError}) or warns, by `verify`.
 */
export async function checkContent(head: Uint8Array, name: Pick<UploadName, "originalName" | "mediaType" | "extension">, verify: ContentVerification): Promise<DetectedMediaKind | undefined> {
  const { originalName, mediaType, extension } = name;
  const detected = await detectMediaKind(head);
  if (detected?.mediaType === mediaType && sameFamily(extension, detected.extension)) return detected;
  const declared = formatFamilies[extension] ? `${mediaTypeName(mediaType)} (${extension})` : mediaTypeName(mediaType);
  const mismatch = new MediaContentMismatchError(originalName, declared, detected?.mime);
  if (verify === "reject") throw mismatch;
  process.emitWarning(mismatch.message, { code: "MEDIA_INTAKE_CONTENT_MISMATCH" });
  return detected;
}

/**
 * The store's content check on the head of a file that is still arriving (a resumable upload's
 * first bytes, up to `DETECTION_BYTES`): what the bytes are, or a {@link MediaContentMismatchError}.
 *
 * @internal shared with the integrations through storage/index.ts; not exported by the package.
 */
export async function checkMediaHead(
  head: Uint8Array,
  options: { originalName: string; verify?: ContentVerification | undefined; mediaTypes?: MediaTypeOptions | undefined },
): Promise<DetectedMediaKind | undefined> {
  if (options.verify === "off") return undefined;
  const { originalName } = options;
  return checkContent(head, { originalName, mediaType: resolveMediaType(originalName, options.mediaTypes), extension: fileExtension(originalName) }, options.verify ?? "reject");
}

/**
 * Whether bytes of the detected format may carry the declared extension: the same container
 * family, or (for an extension outside the known families) any format of the same media type.
 */
function sameFamily(declared: string, detected: string): boolean {
  const family = formatFamilies[declared];
  return family === undefined || family === formatFamilies[detected];
}
