// The media ID the page shows for a chosen file, computed in Chromium by media-intake/browser, is
// the ID the command line gives (`media-intake id <file>`: computeMediaId of src/media-id) for the
// same file: around the sampling thresholds, a few MiB, and a sparse 5 GiB file chosen as a user
// chooses it (setInputFiles), read in three slices, never whole.
import { execFile } from "node:child_process";
import { truncate, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { computeMediaId } from "../../src/media-id/index.ts";
import { lcg, mod251 } from "../helpers/content.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";
import { choose, MiB, openPage, rowOf, startExample } from "./helpers.ts";

const run = promisify(execFile);
const cli = resolve(import.meta.dirname, "../../src/cli/index.ts");

describe("the upload page's media IDs", () => {
  it("equal the command line's for generated files, a sparse 5 GiB file included", async () => {
    const example = await startExample();
    // No token: the page hashes the files and sends nothing.
    const page = await openPage(example, "");
    const dir = await makeTempDir();
    const files: string[] = [];
    for (const [name, bytes] of [
      ["one.bin", mod251(1)],
      ["below.bin", lcg(3071)],
      ["at.bin", lcg(3072)],
      ["above.bin", mod251(3073)],
      ["mib.bin", lcg(MiB + 1)],
      ["six.bin", mod251(6 * MiB + 7)],
    ] as const) {
      await writeFile(join(dir, name), bytes);
      files.push(join(dir, name));
    }
    const sparse = join(dir, "sparse-5gib.bin");
    await writeFile(sparse, "");
    await truncate(sparse, 5 * 2 ** 30);

    await choose(page, ...files);
    for (const path of files) {
      const row = rowOf(page, path.split("/").pop() as string);
      await row.and(page.locator("[data-state=error]")).waitFor();
      expect(await row.getAttribute("data-media-id"), path).toBe(await computeMediaId(path));
      await expect(row.locator(".media-id").textContent()).resolves.toBe(await computeMediaId(path));
    }
    expect(await rowOf(page, "six.bin").locator(".message").textContent()).toContain("No token");

    const started = performance.now();
    await choose(page, sparse);
    const big = rowOf(page, "sparse-5gib.bin");
    await big.and(page.locator("[data-media-id]")).waitFor();
    const ms = performance.now() - started;
    console.log(`media ID of a sparse 5 GiB file in Chromium, from its choice to the ID shown: ${ms.toFixed(0)} ms`);
    expect(await big.getAttribute("data-media-id")).toBe(await computeMediaId(sparse));
    // And what the command line prints for it.
    const { stdout } = await run(process.execPath, [cli, "id", sparse]);
    expect(stdout).toBe(`${await big.getAttribute("data-media-id")}  ${sparse}\n`);
    await expect(big.locator(".size").textContent()).resolves.toBe("5.0 GiB");
    // Nothing was sent: no token, so no request past the page's own files.
    expect(example.proxy.requests.filter((request) => request.method !== "GET")).toEqual([]);
  });
});
