// media-intake/browser's computeMediaId, run in Node (which has Blob, File and fs.openAsBlob):
// the same ID as the core's for every vector and around every threshold, three small reads for a
// file of any size (below the 4 GiB fs.openAsBlob reads right), the abort and read errors of the core, and a bundle for the browser with
// nothing of Node in it.
import { openAsBlob } from "node:fs";
import { open, truncate, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { computeMediaId, isMediaIntakeError, MediaReadError } from "../src/browser/index.ts";
import { computeMediaId as coreMediaId, MediaReadError as CoreMediaReadError } from "../src/index.ts";
import { content, lcg, mod251, type Pattern } from "./helpers/content.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";
import vectors from "./fixtures/media-id-vectors.json" with { type: "json" };
import { specVectors } from "./helpers/spec-vectors.ts";


const blobOf = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]);

/** A sparse file of `size` zero bytes in a temp dir, and its path. */
async function sparseFile(size: number): Promise<string> {
  const path = join(await makeTempDir(), "sparse.bin");
  await writeFile(path, "");
  await truncate(path, size);
  return path;
}

describe("computeMediaId (media-intake/browser) gives the core's ID", () => {
  it.each(specVectors)("docs/contract.md: size %i gives %s, as a Blob and as a File", async (size, id) => {
    const bytes = mod251(size);
    expect(await computeMediaId(blobOf(bytes))).toBe(id);
    expect(await computeMediaId(new File([bytes as Uint8Array<ArrayBuffer>], "clip.mp4"))).toBe(id);
    expect(await coreMediaId(bytes)).toBe(id);
  });

  const inMemory = vectors.cases.filter((c) => c.pattern !== "zeros");
  it.each(inMemory)("test/fixtures/media-id-vectors.json: $pattern, $size bytes", async ({ pattern, size, id }) => {
    expect(await computeMediaId(blobOf(content(pattern as Pattern, size)))).toBe(id);
  });

  // Through fs.openAsBlob only below 4 GiB: Node's openAsBlob reports the size of a larger file
  // modulo 4 GiB (nodejs/node#52585), so its Blob is not the file. The core reads those by path.
  const sparse = vectors.cases.filter((c) => c.pattern === "zeros" && c.size < 2 ** 32);
  it.each(sparse)("test/fixtures/media-id-vectors.json: a sparse file of $size zero bytes, through fs.openAsBlob", async ({ size, id }) => {
    const path = await sparseFile(size);
    expect(await computeMediaId(await openAsBlob(path))).toBe(id);
  });

  it.each([0, 1, 3071, 3072, 3073, 4096, 1024 * 1024 + 1])("around the thresholds: %i bytes, two patterns", async (size) => {
    for (const bytes of [mod251(size), lcg(size)]) {
      expect(await computeMediaId(blobOf(bytes))).toBe(await coreMediaId(bytes));
    }
  });

  it("a slice of a larger blob is its own content", async () => {
    const bytes = lcg(10_000);
    expect(await computeMediaId(blobOf(bytes).slice(17, 5017))).toBe(await coreMediaId(bytes.subarray(17, 5017)));
  });
});

describe("a file of nearly 4 GiB", () => {
  it("is three small reads: its ID, the core's, in well under a second", async () => {
    // The largest size fs.openAsBlob reports right (nodejs/node#52585), with its own bytes at the
    // three samples: the rest is a hole.
    const size = 2 ** 32 - 4096;
    const path = await sparseFile(size);
    const file = await open(path, "r+");
    for (const start of [0, Math.floor((size - 1024) / 2), size - 1024]) await file.write(lcg(1024 + (start % 7)), 0, 1024, start);
    await file.close();
    const blob = await openAsBlob(path);
    expect(blob.size).toBe(size);
    await computeMediaId(new Blob([])); // the hasher loaded, so the time below is the reads'
    const started = performance.now();
    const id = await computeMediaId(blob);
    const elapsed = performance.now() - started;
    console.log(`media-intake/browser: the ID of a ${size}-byte file in ${elapsed.toFixed(1)} ms`);
    expect(id).toBe(await coreMediaId(path));
    expect(id).not.toBe(await coreMediaId(await sparseFile(size)));
    expect(elapsed).toBeLessThan(1000);
  });
});

describe("aborting", () => {
  it("rejects at once with the reason of a signal aborted before the call, reading nothing", async () => {
    const reason = new Error("stop");
    let sliced = 0;
    const blob = new (class extends Blob {
      override slice(...args: Parameters<Blob["slice"]>): Blob {
        sliced += 1;
        return super.slice(...args);
      }
    })([lcg(5000) as Uint8Array<ArrayBuffer>]);
    await expect(computeMediaId(blob, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(sliced).toBe(0);
  });

  it("rejects with the reason as soon as the signal aborts, while the reads are stalled", async () => {
    let readsStarted!: () => void;
    const started = new Promise<void>((resolve) => (readsStarted = resolve));
    let reads = 0;
    const stalled = new (class extends Blob {
      override slice(): Blob {
        if (++reads === 3) readsStarted();
        return { arrayBuffer: () => new Promise<ArrayBuffer>(() => {}) } as Blob;
      }
    })([lcg(5000) as Uint8Array<ArrayBuffer>]);
    const controller = new AbortController();
    const pending = computeMediaId(stalled, { signal: controller.signal });
    await started;
    const reason = new Error("the user picked another file");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("rejects with the reason when the signal aborts while a real file is read", async () => {
    const blob = await openAsBlob(await sparseFile(3 * 1024 ** 3));
    const controller = new AbortController();
    const pending = computeMediaId(blob, { signal: controller.signal });
    const reason = new DOMException("gone", "AbortError");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("resolves as usual with a signal that never aborts", async () => {
    expect(await computeMediaId(blobOf(mod251(3072)), { signal: new AbortController().signal })).toBe("f9062671e8bfb6e1");
  });
});

describe("errors", () => {
  it("a File whose file changed after it was opened is a MediaReadError, as in the core", async () => {
    const path = join(await makeTempDir(), "picked.bin");
    await writeFile(path, lcg(5000));
    const blob = await openAsBlob(path);
    await writeFile(path, lcg(6000));
    const error = await computeMediaId(blob).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MediaReadError);
    expect(isMediaIntakeError(error, "MEDIA_READ_FAILED")).toBe(true);
    expect((error as MediaReadError).message).toBe("Reading <blob>: The blob could not be read");
    expect((error as MediaReadError).source).toBe("<blob>");
    // The core's class is its own copy in a bundle, but the code and the name are the same.
    await expect(coreMediaId(blob)).rejects.toBeInstanceOf(CoreMediaReadError);
  });

  it("refuses what is not a Blob, and an option it does not know", async () => {
    await expect(computeMediaId(mod251(10) as unknown as Blob)).rejects.toThrow("computeMediaId: expected a Blob or a File, got Uint8Array.");
    await expect(computeMediaId("clip.mp4" as unknown as Blob)).rejects.toThrow(TypeError);
    await expect(computeMediaId(blobOf(mod251(10)), { size: 10 } as never)).rejects.toThrow('computeMediaId: unknown option "size"; the one option is `signal`.');
  });
});

describe("the entry as a browser bundle", () => {
  it("bundles for the browser (esbuild, ESM) with no node: import and no Buffer", async () => {
    const result = await build({
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
      entryPoints: [resolve(import.meta.dirname, "../src/browser/index.ts")],
      // An optional peer, left to the page as the package build leaves it (dist/browser.js).
      external: ["tus-js-client"],
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]?.text ?? "";
    expect(code).toContain("computeMediaId");
    expect(code).not.toMatch(/["']node:/);
    expect(code).not.toMatch(/\bBuffer\b/);
    // xxhash-wasm is in the bundle (its browser-safe ESM build), not left as an import.
    expect(code).not.toMatch(/from\s*["']xxhash-wasm["']/);
    // tus-js-client only as uploadResumable's dynamic import, never at the top.
    expect(code).toContain('import("tus-js-client")');
    expect(code).not.toMatch(/from\s*["']tus-js-client["']/);
  });
});
