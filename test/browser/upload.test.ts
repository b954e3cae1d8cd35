// Uploads through the page in Chromium, to the end: an image and a video chosen together are each
// a row that ends `done` with its record AIProcessed and its detections; a file the service
// already has, chosen again, ends `done` with next to nothing sent (the possession check), 200 MB
// of it included. The screenshot of docs/upload-page.png is taken here.
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { detect } from "../../examples/express/detector.ts";
import { sampleMp4, samplePng } from "../../examples/sample-media.ts";
import { computeMediaId, MediaStatus } from "../../src/index.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";
import { choose, MiB, mp4Chunks, openPage, reaches, rowOf, startExample, writeChunks } from "./helpers.ts";

const screenshot = resolve(import.meta.dirname, "../../docs/upload-page.png");
const stored = async (root: string) => (await filesUnder(root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));

async function record(url: string, token: string, id: string) {
  return (await (await fetch(`${url}/media/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
}

describe("the upload page", () => {
  it("uploads an image and a video to done, with their status and detections, a broken image to Error; the image chosen again is not sent again", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const dir = await makeTempDir();
    const png = join(dir, "street-corner.png");
    const mp4 = join(dir, "drone-survey.mp4");
    await writeFile(png, samplePng(320, 200, 7));
    await writeFile(mp4, sampleMp4(3 * MiB, 11));
    const cut = join(dir, "scan-cut-short.png");
    const whole = samplePng(60, 40, 8);
    await writeFile(cut, whole.subarray(0, whole.length - 30));
    const [pngId, mp4Id, cutId] = [await computeMediaId(png), await computeMediaId(mp4), await computeMediaId(cut)];

    await choose(page, cut, png, mp4);
    for (const [name, id, path] of [
      ["street-corner.png", pngId, `images/${pngId}.png`],
      ["drone-survey.mp4", mp4Id, `videos/${mp4Id}.mp4`],
    ] as const) {
      const row = rowOf(page, name);
      await reaches(row, "done");
      expect(await row.getAttribute("data-media-id")).toBe(id);
      expect(await row.getAttribute("data-status")).toBe("AIProcessed");
      await expect(row.locator(".status").textContent()).resolves.toBe("NewAIProcessingAIProcessed");
      const detections = await detect(join(example.root, path), id);
      expect(await row.locator(".detections li").allTextContents()).toEqual(detections.map((d) => `${d.label} ${Math.round(d.confidence * 100)}%`));
      expect(await record(example.direct, token, id)).toMatchObject({ id, name, userId: "alice", mediaStatus: MediaStatus.AIProcessed });
    }
    // A PNG cut short: stored, and its detection fails: the row says so, its record in Error.
    const failed = rowOf(page, "scan-cut-short.png");
    await reaches(failed, "error");
    expect(await failed.getAttribute("data-status")).toBe("Error");
    await expect(failed.locator(".status").textContent()).resolves.toBe("NewAIProcessingError");
    await expect(failed.locator(".message").textContent()).resolves.toMatch(/^Detection failed: .*truncated/);
    expect(await stored(example.root)).toEqual([`images/${cutId}.png`, `images/${pngId}.png`, `videos/${mp4Id}.mp4`].sort());
    // All three went through tus: one creation each.
    expect(example.proxy.requests.filter((r) => r.method === "POST" && r.path === "/files")).toHaveLength(3);

    // The image again: its row ends done, says it was there, and its bytes are not sent.
    const before = example.proxy.requests.length;
    await choose(page, png);
    const again = rowOf(page, "street-corner.png").first();
    await reaches(again, "done");
    await expect(again.locator(".message").textContent()).resolves.toContain("Already there");
    expect(await again.getAttribute("data-media-id")).toBe(pngId);
    expect(example.proxy.requests.slice(before).filter((r) => r.path.startsWith("/files"))).toEqual([]);
    expect(example.proxy.bytesFrom(before)).toBeLessThan((await readFile(png)).length);

    await page.locator("input[name=token]").blur();
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  it("the same 200 MB file chosen again ends done with under 1 MiB sent", async () => {
    const example = await startExample();
    const page = await openPage(example, await example.token("alice"));
    const big = await writeChunks(join(await makeTempDir(), "flight-200mb.mp4"), mp4Chunks(200 * MiB, 3));
    const id = await computeMediaId(big);

    await choose(page, big);
    const first = rowOf(page, "flight-200mb.mp4");
    await reaches(first, "done");
    expect(example.proxy.bytesFrom(0)).toBeGreaterThan(200 * MiB);

    const before = example.proxy.requests.length;
    await choose(page, big);
    const again = rowOf(page, "flight-200mb.mp4").first();
    await reaches(again, "done");
    await expect(again.locator(".message").textContent()).resolves.toContain("Already there");
    const sent = example.proxy.bytesFrom(before);
    console.log(`the 200 MB file chosen again: ${sent} bytes sent`);
    expect(sent).toBeLessThan(MiB);
    expect(await again.getAttribute("data-media-id")).toBe(id);
    expect(await stored(example.root)).toEqual([`videos/${id}.mp4`]);
  });
});
