import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  defaultImageExtensions,
  defaultVideoExtensions,
  detectMediaKind,
  fileExtension,
  MediaType,
  mediaTypeName,
  resolveMediaType,
  UnsupportedMediaTypeError,
} from "../src/index.ts";

describe("resolveMediaType", () => {
  it.each(defaultVideoExtensions)("%s is a Video, in any case", (ext) => {
    expect(resolveMediaType(`clip${ext}`)).toBe(MediaType.Video);
    expect(resolveMediaType(`CLIP${ext.toUpperCase()}`)).toBe(MediaType.Video);
  });

  it.each(defaultImageExtensions)("%s is an Image, in any case", (ext) => {
    expect(resolveMediaType(`photo${ext}`)).toBe(MediaType.Image);
    expect(resolveMediaType(`Photo${ext.toUpperCase()}`)).toBe(MediaType.Image);
  });

  it("uses the last extension of the base name only", () => {
    expect(resolveMediaType("archive.tar.mp4")).toBe(MediaType.Video);
    expect(resolveMediaType("C:\\fakepath\\scan.JPEG")).toBe(MediaType.Image);
    expect(() => resolveMediaType("video.mp4/notes")).toThrow(UnsupportedMediaTypeError);
    expect(fileExtension("dir.mp4/readme")).toBe("");
  });

  it("names an unknown extension in the error", () => {
    const error = (() => {
      try {
        resolveMediaType("notes.TXT");
      } catch (e) {
        return e as UnsupportedMediaTypeError;
      }
    })();
    expect(error).toBeInstanceOf(UnsupportedMediaTypeError);
    expect(error?.message).toBe('Resolving the media type of "notes.TXT": unsupported extension ".txt"');
    expect(error).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE", extension: ".txt", fileName: "notes.TXT" });
  });

  it.each(["README", ".png", "trailing.", ""])("refuses %j as having no extension", (name) => {
    expect(() => resolveMediaType(name)).toThrow(/it has no extension/);
  });

  it("adds, moves and replaces extensions", () => {
    expect(resolveMediaType("a.mxf", { extensions: { ".mxf": MediaType.Video } })).toBe(MediaType.Video);
    expect(resolveMediaType("a.AVIF", { extensions: { avif: MediaType.Image } })).toBe(MediaType.Image);
    expect(resolveMediaType("a.gif", { extensions: { ".gif": MediaType.Video } })).toBe(MediaType.Video);
    const only = { extensions: { ".raw": MediaType.Image }, replaceDefaults: true };
    expect(resolveMediaType("a.raw", only)).toBe(MediaType.Image);
    expect(() => resolveMediaType("a.png", only)).toThrow(UnsupportedMediaTypeError);
  });

  it("validates the options, naming the bad one", () => {
    expect(() => resolveMediaType("a.x", { extensions: { ".x": 3 as MediaType } })).toThrow(
      'resolveMediaType: expected `extensions[".x"]` to be MediaType.Video (1) or MediaType.Image (2), got 3.',
    );
    expect(() => resolveMediaType("a.x", { extensions: { "../x": MediaType.Image } })).toThrow(/file extensions such as/);
  });

  it("names the types", () => {
    expect([mediaTypeName(MediaType.Video), mediaTypeName(MediaType.Image)]).toEqual(["Video", "Image"]);
  });
});

describe("detectMediaKind", () => {
  it("recognises images and videos from their leading bytes", async () => {
    expect(await detectMediaKind(samplePng())).toEqual({ mediaType: MediaType.Image, mime: "image/png", extension: ".png" });
    expect(await detectMediaKind(sampleMp4(4096))).toMatchObject({ mediaType: MediaType.Video, mime: "video/mp4" });
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0]), Buffer.alloc(64)]);
    expect(await detectMediaKind(jpeg)).toMatchObject({ mediaType: MediaType.Image, mime: "image/jpeg" });
    const transportStream = Buffer.alloc(188 * 8);
    for (let i = 0; i < 8; i++) transportStream[i * 188] = 0x47;
    expect(await detectMediaKind(transportStream)).toMatchObject({ mediaType: MediaType.Video, mime: "video/mp2t" });
  });

  it("returns undefined for text, archives and nothing", async () => {
    expect(await detectMediaKind(Buffer.from("just some text, not a picture"))).toBeUndefined();
    expect(await detectMediaKind(Buffer.from([0x50, 0x4b, 0x03, 0x04, ...new Array(40).fill(0)]))).toBeUndefined();
    expect(await detectMediaKind(new Uint8Array(0))).toBeUndefined();
  });
});
