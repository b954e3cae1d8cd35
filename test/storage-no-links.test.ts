// A file system without hard links (FAT, some network shares): `link` fails with EPERM, and the
// store falls back to a guarded check-then-rename that must never replace a file.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { linkSync } from "node:fs";
import { link } from "node:fs/promises";
import { describe, expect, it, vi } from "vitest";
import { computeMediaId, MediaIdCollisionError, storeMedia } from "../src/index.ts";
import { startChild } from "./helpers/child.ts";
import { lcg } from "./helpers/content.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...actual,
    link: vi.fn(async () => {
      throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
    }),
  };
});

// The store links on the event loop on a local file system: that call fails the same way.
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  return {
    ...actual,
    linkSync: vi.fn(() => {
      throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
    }),
  };
});

const childScript = resolve(import.meta.dirname, "fixtures/store-no-links-child.ts");

/** Two contents of one sampled ID: byte 2000 lies outside the three sampled windows. */
async function twoContentsOneId(): Promise<[Buffer, Buffer]> {
  const a = Buffer.from(lcg(10_000));
  const b = Buffer.from(a);
  b[2000] = (b[2000]! + 1) & 255;
  expect(await computeMediaId(b)).toBe(await computeMediaId(a));
  return [a, b];
}

describe("storeMedia without hard links", () => {
  it("two contents with one sampled ID, stored at once many times: one file, never replaced, never mixed", async () => {
    const root = await makeTempDir();
    const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
    const [a, b] = await twoContentsOneId();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => storeMedia(i % 2 === 0 ? a : b, { originalName: "clip.mp4", directories, verify: "off" })),
    );
    // The link was tried (and refused) every time: the fallback is what stored them.
    expect(vi.mocked(linkSync).mock.calls.length + vi.mocked(link).mock.calls.length).toBeGreaterThanOrEqual(1);
    const created = results.filter((r) => r.status === "fulfilled" && r.value.created);
    expect(created).toHaveLength(1);
    const winner = (created[0] as PromiseFulfilledResult<{ path: string }>).value;
    const kept = await readFile(winner.path);
    expect(kept.equals(a) || kept.equals(b)).toBe(true);
    for (const result of results) {
      if (result.status === "rejected") expect(result.reason).toBeInstanceOf(MediaIdCollisionError);
      else expect(result.value.path).toBe(winner.path);
    }
    // The same bytes as the kept file never fail; the other content always does.
    const same = kept.equals(a) ? 0 : 1;
    results.forEach((result, i) => expect(result.status).toBe(i % 2 === same ? "fulfilled" : "rejected"));
    expect(await readdir(directories.videosDir)).toEqual([winner.path.slice(directories.videosDir.length + 1)]);
  });

  it("across processes, the guard keeps the check-then-rename from ever replacing a file", async () => {
    const root = await makeTempDir();
    const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
    const [a, b] = await twoContentsOneId();
    await writeFile(join(root, "a.bin"), a);
    await writeFile(join(root, "b.bin"), b);
    const children = ["a.bin", "b.bin"].map((name) => startChild(childScript, { file: join(root, name), directories, times: 50 }));
    await Promise.all(children.map((child) => child.line("READY")));
    for (const child of children) child.child.stdin.write("go\n");
    await Promise.all(children.map((child) => child.line("DONE")));
    const [linesA, linesB] = children.map((child) => child.lines());
    const created = [...linesA!, ...linesB!].filter((line) => line === "CREATED");
    expect(created).toHaveLength(1);
    const files = (await readdir(directories.videosDir)).filter((name) => !name.startsWith("."));
    expect(files).toHaveLength(1);
    const kept = await readFile(join(directories.videosDir, files[0]!));
    // The side whose bytes were kept saw only CREATED/SAME; the other only collisions.
    const winnerLines = kept.equals(a) ? linesA! : linesB!;
    const loserLines = kept.equals(a) ? linesB! : linesA!;
    expect(winnerLines.filter((line) => line !== "DONE" && line !== "READY").every((line) => line === "CREATED" || line === "SAME")).toBe(true);
    expect(loserLines.filter((line) => line !== "DONE" && line !== "READY").every((line) => line === "MEDIA_ID_COLLISION")).toBe(true);
    expect((await readdir(directories.videosDir)).filter((name) => name.startsWith("."))).toEqual([]);
  });
});
