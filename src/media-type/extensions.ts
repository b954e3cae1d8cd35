// docs/contract.md "MediaType": the default extensions, case-insensitive, with their dot.

export const defaultVideoExtensions: readonly string[] = [
  ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp",
];

export const defaultImageExtensions: readonly string[] = [
  ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic", ".heif",
];

/** MIME types of video containers that do not start with `video/`. */
export const otherVideoMimeTypes: readonly string[] = ["application/vnd.ms-asf"];

/**
 * Container families: extensions whose bytes may be one another's (an `.mp4` that is a
 * QuickTime file, a `.webm` that file-type calls Matroska). The content check accepts any
 * format of the family the name's extension belongs to. Extensions not listed here (added by
 * users) are checked by media type only.
 *
 * @internal shared through media-type/index.ts; not exported by the package.
 */
export const formatFamilies: Readonly<Record<string, string>> = {
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".png": "png",
  ".apng": "png",
  ".gif": "gif",
  ".bmp": "bmp",
  ".webp": "webp",
  ".tif": "tiff",
  ".tiff": "tiff",
  ".heic": "heif",
  ".heif": "heif",
  ".avif": "heif",
  ".mp4": "iso-bmff",
  ".m4v": "iso-bmff",
  ".mov": "iso-bmff",
  ".qt": "iso-bmff",
  ".3gp": "iso-bmff",
  ".3g2": "iso-bmff",
  ".f4v": "iso-bmff",
  ".mkv": "matroska",
  ".webm": "matroska",
  ".avi": "riff-avi",
  ".wmv": "asf",
  ".asf": "asf",
  ".flv": "flv",
  ".mpg": "mpeg-ps",
  ".mpeg": "mpeg-ps",
  ".ts": "mpeg-ts",
  ".mts": "mpeg-ts",
  ".m2ts": "mpeg-ts",
};
