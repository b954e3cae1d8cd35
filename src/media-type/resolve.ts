import { UnsupportedMediaTypeError } from "../errors/index.ts";
import { checkOptionsOf, type OptionChecks } from "../utils/index.ts";
import { defaultImageExtensions, defaultVideoExtensions, otherVideoMimeTypes } from "./extensions.ts";

/** The media types of docs/contract.md, as their wire values: `MediaType.Video` (1), `MediaType.Image` (2). */
export const MediaType = Object.freeze({ Video: 1, Image: 2 } as const);
/** `1` (Video) or `2` (Image). */
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

/** The name of a media type: `mediaTypeName(1) === "Video"`. */
export function mediaTypeName(type: MediaType): "Video" | "Image" {
  return type === MediaType.Video ? "Video" : "Image";
}

/** Options of {@link resolveMediaType}: extra or different extensions. */
export interface MediaTypeOptions {
  /**
   * Extensions to add, or to move to the other type, with or without their dot, any case.
   * @example { ".mxf": MediaType.Video, "avif": MediaType.Image }
   */
  extensions?: Readonly<Record<string, MediaType>>;
  /**
   * Use only `extensions`, without docs/contract.md's default tables.
   * @default false
   */
  replaceDefaults?: boolean;
}

const tables = new WeakMap<MediaTypeOptions, ReadonlyMap<string, MediaType>>();
const defaultTable: ReadonlyMap<string, MediaType> = new Map([
  ...defaultVideoExtensions.map((ext) => [ext, MediaType.Video] as const),
  ...defaultImageExtensions.map((ext) => [ext, MediaType.Image] as const),
]);

/**
 * Checks `options` and builds its extension table once (later calls with the same object reuse
 * it). Throws a `TypeError` naming the bad option, and `check`'s function (`storeMedia`'s
 * `mediaTypes`, say).
 *
 * @internal shared through media-type/index.ts; not exported by the package.
 */
export function normalizeMediaTypeOptions(options?: MediaTypeOptions, check?: OptionChecks): ReadonlyMap<string, MediaType> {
  // No options, the common case: the default table, with nothing built or checked per upload.
  if (options === undefined) return defaultTable;
  const cached = tables.get(options);
  if (cached) return cached;
  check ??= checkOptionsOf("resolveMediaType");
  check.known(options, ["extensions", "replaceDefaults"]);
  const table = new Map(check.boolean("replaceDefaults", options.replaceDefaults) ? [] : defaultTable);
  for (const [raw, type] of Object.entries(options.extensions ?? {})) {
    const ext = (raw.startsWith(".") ? raw : `.${raw}`).toLowerCase();
    if (!/^\.[a-z0-9][a-z0-9_-]*$/.test(ext)) check.fail("extensions", 'keyed by file extensions such as ".mxf"', raw);
    if (type !== MediaType.Video && type !== MediaType.Image) check.fail(`extensions[${JSON.stringify(raw)}]`, "MediaType.Video (1) or MediaType.Image (2)", type);
    table.set(ext, type);
  }
  tables.set(options, table);
  return table;
}

/**
 * The lowercased last extension of a file name, with its dot (`"clip.tar.MP4"` -> `".mp4"`),
 * or `""`. Only the base name counts, with `/` and `\` both separators (browsers may send
 * `C:\fakepath\x.jpg`); a leading dot alone (`.png`) is a hidden file, not an extension.
 */
export function fileExtension(fileName: string): string {
  const base = fileName.slice(Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\")) + 1);
  const dot = base.lastIndexOf(".");
  return dot <= 0 || dot === base.length - 1 ? "" : base.slice(dot).toLowerCase();
}

/**
 * Video or Image from the last extension of the original file name, case-insensitive.
 *
 * @throws {UnsupportedMediaTypeError} an unknown or missing extension, naming it.
 * @example
 * resolveMediaType("clip.MP4"); // MediaType.Video (1)
 * resolveMediaType("scan.jp2", { extensions: { ".jp2": MediaType.Image } }); // MediaType.Image
 */
export function resolveMediaType(fileName: string, options?: MediaTypeOptions): MediaType {
  const ext = fileExtension(fileName);
  const type = normalizeMediaTypeOptions(options).get(ext);
  if (type === undefined) throw new UnsupportedMediaTypeError(fileName, ext);
  return type;
}

/** What the leading bytes of some content look like. */
export interface DetectedMediaKind {
  /** Video or Image. */
  mediaType: MediaType;
  /** The detected MIME type, e.g. `"video/mp4"`. */
  mime: string;
  /** The usual extension of that format, with its dot, e.g. `".mp4"`. */
  extension: string;
}

/** How many leading bytes {@link detectMediaKind} looks at; more are ignored. *
 * @internal shared through media-type/index.ts; not exported by the package.
 */
export const DETECTION_BYTES = 4100;

let fileType: typeof import("file-type") | undefined;

/**
 * Recognises the common image and video containers from their leading bytes (the first
 * {@link DETECTION_BYTES} are enough), with file-type. `undefined` when the bytes are no known
 * image or video format (text, an archive, nothing at all).
 *
 * @example
 * await detectMediaKind(pngBytes); // { mediaType: 2, mime: "image/png", extension: ".png" }
 */
export async function detectMediaKind(bytes: Uint8Array): Promise<DetectedMediaKind | undefined> {
  // file-type is loaded with the first detection, not at import; kept, since an `import()` of a
  // module already loaded still goes through the loader (about 1% of a small upload's CPU).
  fileType ??= await import("file-type");
  const found = await fileType.fileTypeFromBuffer(bytes.subarray(0, DETECTION_BYTES));
  if (!found) return undefined;
  const mime = found.mime as string;
  const mediaType = mime.startsWith("image/")
    ? MediaType.Image
    : mime.startsWith("video/") || otherVideoMimeTypes.includes(mime)
      ? MediaType.Video
      : undefined;
  return mediaType === undefined ? undefined : { mediaType, mime, extension: `.${found.ext}` };
}
