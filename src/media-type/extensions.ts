// SPEC.md "MediaType": the default extensions, case-insensitive, with their dot.

export const defaultVideoExtensions: readonly string[] = [
  ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp",
];

export const defaultImageExtensions: readonly string[] = [
  ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic", ".heif",
];

/** MIME types of video containers that do not start with `video/`. */
export const otherVideoMimeTypes: readonly string[] = ["application/vnd.ms-asf"];
