// sanitizeMediaName: the record's display name from an untrusted upload name.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sanitizeMediaName } from "../src/index.ts";

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const clustersOf = (text: string) => Array.from(graphemes.segment(text), ({ segment }) => segment);
const codePoints = (text: string) => [...text].length;

/** Clusters of several code points each, of every kind a cut could split. */
const clusters = {
  "a ZWJ family": "👨‍👩‍👧‍👦", // 7 code points
  "a ZWJ sequence with a skin tone": "👩🏽‍💻", // 4
  "a ZWJ sequence with a variation selector": "🏳️‍🌈", // 4
  "a flag": "🇺🇦", // 2 regional indicators
  "a tag-sequence flag": "🏴󠁧󠁢󠁳󠁣󠁴󠁿", // 7
  "a skin tone": "👍🏽", // 2
  "a keycap": "1️⃣", // 3
  "combining marks": "q\u0316\u0317\u0301", // 4, in canonical order, no precomposed form
  "an Indic conjunct": "\u0915\u094D\u0937", // 3
} as const;

describe("sanitizeMediaName", () => {
  it("keeps the base name and Unicode, drops control and bidi characters", () => {
    expect(sanitizeMediaName("../../etc/видео 🎬.MP4")).toBe("видео 🎬.MP4");
    expect(sanitizeMediaName("C:\\fakepath\\holiday\u202Egpj.exe")).toBe("holidaygpj.exe");
    expect(sanitizeMediaName("a\u0000b\nc\td.png")).toBe("ab c d.png");
    expect(sanitizeMediaName("/")).toBe("unnamed");
  });

  it("bounds the length to 255 code points, keeping the extension and whole emoji", () => {
    const long = `${"🎬".repeat(300)}.mp4`;
    const name = sanitizeMediaName(long);
    expect([...name]).toHaveLength(255);
    expect(name.endsWith("🎬.mp4")).toBe(true);
    expect(name).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it("never cuts inside an emoji sequence or a flag", () => {
    const family = "👨‍👩‍👧"; // 5 code points
    const flag = "🇺🇦"; // 2 code points
    for (const cluster of [family, flag]) {
      for (let pad = 0; pad < 6; pad++) {
        const name = sanitizeMediaName(`${"a".repeat(pad)}${cluster.repeat(100)}.png`, 20);
        const stem = name.slice(0, -".png".length).slice(pad);
        expect(stem.length % cluster.length).toBe(0);
        expect(stem).toBe(cluster.repeat(stem.length / cluster.length));
        expect([...name].length).toBeLessThanOrEqual(20);
      }
    }
  });

  it.each(Object.entries(clusters))("never cuts %s at the 255 code point limit, wherever the limit falls", (_, cluster) => {
    expect(clustersOf(cluster)).toEqual([cluster]);
    expect(cluster.normalize("NFC")).toBe(cluster);
    const size = codePoints(cluster);
    for (const extension of [".mp4", ""]) {
      // Every position of the limit inside the cluster, and on each side of it.
      for (let pad = 255 - codePoints(extension) - size - 1; pad <= 255 - codePoints(extension) + 1; pad++) {
        const name = sanitizeMediaName(`${"a".repeat(pad)}${cluster}${"b".repeat(20)}${extension}`);
        expect(codePoints(name)).toBeLessThanOrEqual(255);
        expect(name.endsWith(extension)).toBe(true);
        const stem = name.slice(0, name.length - extension.length);
        // The cluster is kept whole, or not at all.
        const fits = pad + size <= 255 - codePoints(extension);
        expect(stem).toBe(fits ? `${"a".repeat(pad)}${cluster}${"b".repeat(255 - codePoints(extension) - pad - size)}` : "a".repeat(Math.min(pad, 255 - codePoints(extension))));
      }
    }
  });

  it("cuts only between grapheme clusters, for any mix of them (property)", () => {
    const pieces = [...Object.values(clusters), "a", "é", " ", ".", "各", "\u200D", "\uFE0F", "🇫"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 300 }), fc.constantFrom("", ".jpg", ".👨‍👩‍👧‍👦"), fc.integer({ min: 16, max: 255 }), (parts, extension, maxLength) => {
        const name = sanitizeMediaName(parts.join("") + extension, maxLength);
        const clean = (parts.join("") + extension).normalize("NFC").replace(/\s+/gu, " ").trim();
        if (codePoints(clean) <= maxLength) return;
        expect(codePoints(name)).toBeLessThanOrEqual(maxLength);
        const dot = clean.lastIndexOf(".");
        const kept = dot > 0 && codePoints(clean.slice(dot)) < 16 ? clean.slice(dot) : "";
        expect(name.endsWith(kept)).toBe(true);
        const stem = clustersOf(name.slice(0, name.length - kept.length));
        expect(stem).toEqual(clustersOf(kept ? clean.slice(0, dot) : clean).slice(0, stem.length));
      }),
      { numRuns: 2000 },
    );
  });
});
