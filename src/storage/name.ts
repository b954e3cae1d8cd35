/** The longest display name kept, in code points (extensions are kept when cutting). */
export const MAX_NAME_LENGTH = 255;

/**
 * A display name for the record's Name, from an untrusted upload name: the base name only
 * (`/` and `\` both separate), Unicode NFC, white space folded to one space, other control and
 * bidirectional-override characters removed, at most 255 code points (cut before the extension, between
 * grapheme clusters: never inside an emoji sequence, a flag or a combining mark). Letters of every script and emoji are kept. Never used in a path.
 *
 * @example
 * sanitizeMediaName("C:\\fakepath\\holiday\u202Egpj.exe"); // "holidaygpj.exe"
 * sanitizeMediaName("../../etc/видео 🎬.MP4"); // "видео 🎬.MP4"
 */
export function sanitizeMediaName(originalName: string, maxLength = MAX_NAME_LENGTH): string {
  const base = originalName.slice(Math.max(originalName.lastIndexOf("/"), originalName.lastIndexOf("\\")) + 1);
  const clean = base
    .normalize("NFC")
    .replace(/\s+/gu, " ")
    .replace(/[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu, "")
    .trim();
  const points = [...clean];
  if (points.length === 0 || clean === "." || clean === "..") return "unnamed";
  if (points.length <= maxLength) return clean;
  const dot = clean.lastIndexOf(".");
  const extension = dot > 0 ? clean.slice(dot) : "";
  const keep = [...extension].length < 16 ? extension : "";
  // Cut between grapheme clusters: a family emoji or a flag is kept whole or not at all.
  let kept = "";
  let length = 0;
  const budget = maxLength - [...keep].length;
  for (const { segment } of graphemes.segment(keep ? clean.slice(0, dot) : clean)) {
    const size = [...segment].length;
    if (length + size > budget) break;
    kept += segment;
    length += size;
  }
  return kept + keep;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
