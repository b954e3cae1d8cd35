// Uploads cut mid-way through the page: a reload, then the same file chosen again, resumes at the
// server's offset; the network dropped while offline waits for it, then ends as one upload, one
// file and one record. The counting proxy holds the upload's PATCH mid-body, so "mid-upload" is a
// place in the bytes, not a moment.
import { watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { computeMediaId, MediaStatus } from "../../src/index.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";
import { choose, type Example, MiB, mp4Chunks, openPage, reaches, ready, rowOf, startExample, unlessFails, writeChunks } from "./helpers.ts";
import type { ProxiedRequest } from "./proxy.ts";

const SIZE = 24 * MiB;
const HOLD_AT = 8 * MiB;
const isPatch = (request: ProxiedRequest) => request.method === "PATCH" && request.path.startsWith("/files/");

/** Resolves once a partial upload in the tus folder holds `bytes` (the server wrote them): on its file's changes, not a timer. */
function partialHolds(example: Example, bytes: number): Promise<void> {
  const folder = join(example.root, "videos/.media-intake-uploads");
  const large = async () => {
    for (const name of await filesUnder(folder)) if (!name.includes(".") && (await stat(join(folder, name))).size >= bytes) return true;
    return false;
  };
  return new Promise<void>((resolve, reject) => {
    // Watching first, then looking: a write between the two is not missed.
    const watcher = watch(folder, () => void check());
    const check = () =>
      large().then((done) => {
        if (!done) return;
        watcher.close();
        resolve();
      }, reject);
    void check();
  });
}

async function history(example: Example, token: string, id: string): Promise<number[]> {
  const response = await fetch(`${example.annotationsUrl}/api/media/${id}/history`, { headers: { authorization: `Bearer ${token}` } });
  return ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}

/** The upload of `file` held at HOLD_AT bytes of its PATCH, the server holding part of it. */
async function heldUpload(example: Example, page: Page, file: string) {
  const held = example.proxy.holdNext(isPatch, HOLD_AT);
  await choose(page, file);
  const cut = await unlessFails(rowOf(page, basename(file)), held);
  await partialHolds(example, MiB);
  return cut;
}

/**
 * What the proxy saw: one creation; its first PATCH from 0; then, after the resume's HEAD, PATCHes
 * from the offset that HEAD answered to the end, not a byte before it sent again. (Between the two,
 * Chromium may send the cut PATCH once more by itself, on a new connection: the server's 409 stops it.)
 */
async function expectResumedAtServerOffset(example: Example, file: string, token: string) {
  const { requests } = example.proxy;
  const size = (await stat(file)).size;
  expect(requests.filter((r) => r.method === "POST" && r.path === "/files")).toHaveLength(1);
  expect(requests.find(isPatch)?.headers["upload-offset"]).toBe("0");
  const head = requests.findLastIndex((r) => r.method === "HEAD" && r.path.startsWith("/files/") && r.status === 200);
  const offset = Number(requests[head]?.responseHeaders?.["upload-offset"]);
  expect(offset).toBeGreaterThanOrEqual(MiB);
  expect(offset).toBeLessThanOrEqual(HOLD_AT);
  const resumed = requests.slice(head).filter(isPatch);
  expect(resumed[0]?.headers["upload-offset"]).toBe(String(offset));
  expect(resumed.reduce((sum, r) => sum + r.bodyBytes, 0)).toBe(size - offset);

  const id = await computeMediaId(file);
  expect((await filesUnder(example.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path))).toEqual([`videos/${id}.mp4`]);
  expect((await readFile(join(example.root, `videos/${id}.mp4`))).equals(await readFile(file))).toBe(true);
  expect(await history(example, token, id)).toEqual([MediaStatus.New, MediaStatus.AIProcessing, MediaStatus.AIProcessed]);
}

describe("an upload cut mid-way through the page", () => {
  it("resumes at the server's offset after a reload, when the same file is chosen again", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const file = await writeChunks(join(await makeTempDir(), "long-take.mp4"), mp4Chunks(SIZE, 5));
    const cut = await heldUpload(example, page, file);
    await reaches(rowOf(page, "long-take.mp4"), "uploading");

    await page.reload();
    // The PATCH the old page left: Chromium closes its connection only later, and the server
    // would give it 3 s (@tus/server's lockDrainTimeout) before the resume's HEAD gets its lock.
    cut.drop();
    await ready(page, token);
    await choose(page, file);
    const row = rowOf(page, "long-take.mp4");
    await reaches(row, "done");
    expect(await row.getAttribute("data-status")).toBe("AIProcessed");
    await expectResumedAtServerOffset(example, file, token);
  });

  it("offline mid-upload: waits for the network, then resumes and ends as one upload, one file and one record", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const file = await writeChunks(join(await makeTempDir(), "field-clip.mp4"), mp4Chunks(SIZE, 6));
    const cut = await heldUpload(example, page, file);

    await page.context().setOffline(true);
    cut.drop();
    const row = rowOf(page, "field-clip.mp4");
    await reaches(row, "paused");
    await expect(row.locator(".message").textContent()).resolves.toContain("Offline");

    await page.context().setOffline(false);
    await reaches(row, "done");
    expect(await row.getAttribute("data-status")).toBe("AIProcessed");
    await expectResumedAtServerOffset(example, file, token);
  });

  it("the same file chosen twice at once: the second row waits for the first, then is skipped; one upload, no request cut", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const file = await writeChunks(join(await makeTempDir(), "twice.mp4"), mp4Chunks(SIZE, 10));
    const cut = await heldUpload(example, page, file);
    await choose(page, file);
    const [second, first] = [rowOf(page, "twice.mp4").nth(0), rowOf(page, "twice.mp4").nth(1)];
    await second.locator(".message", { hasText: "The same file is being uploaded in another row" }).waitFor();
    cut.drop();
    await reaches(first, "done");
    await reaches(second, "done");
    await expect(second.locator(".rate").textContent()).resolves.toBe("Nothing sent");
    const { requests } = example.proxy;
    expect(requests.filter((r) => r.method === "POST" && r.path === "/files")).toHaveLength(1);
    // (Chromium may send the cut PATCH from 0 once more by itself, answered 409: see above.)
    expect(requests.filter((r) => (r.status === 409 || r.status === 423) && r.headers["upload-offset"] !== "0")).toEqual([]);
    expect(await second.getAttribute("data-status")).toBe("AIProcessed");
  });

  it("cancelled while offline: never resumed once the network is back; the partial upload is removed then, nothing stored", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const file = await writeChunks(join(await makeTempDir(), "private-clip.mp4"), mp4Chunks(SIZE, 9));
    const cut = await heldUpload(example, page, file);
    await page.context().setOffline(true);
    cut.drop();
    const row = rowOf(page, "private-clip.mp4");
    await reaches(row, "paused");
    await page.getByRole("button", { name: "Cancel the upload of private-clip.mp4" }).click();
    await row.and(page.locator("[data-outcome=cancelled]")).waitFor();
    expect(await row.getAttribute("data-state")).toBe("error");
    await expect(row.locator(".state").textContent()).resolves.toBe("Cancelled");
    await expect(row.locator(".message").textContent()).resolves.toContain("once the connection is back");

    const from = example.proxy.requests.length;
    await page.context().setOffline(false);
    await row.locator(".message", { hasText: "Cancelled. Nothing of it was kept." }).waitFor();
    // Only the removal went out: no HEAD, no PATCH, no new upload.
    const upload = cut.request.path;
    expect(example.proxy.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`DELETE ${upload} 204`]);
    const uploadId = upload.split("/").pop() as string;
    expect((await filesUnder(join(example.root, "videos/.media-intake-uploads"))).filter((name) => name.startsWith(uploadId))).toEqual([]);
    expect((await filesUnder(example.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path))).toEqual([]);
    expect(await page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith("tus::")))).toEqual([]);
    expect(await row.getAttribute("data-state")).toBe("error");
  });

  it("pause, then resume, goes on from the server's offset; cancel removes the partial upload", async () => {
    const example = await startExample();
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const dir = await makeTempDir();
    const file = await writeChunks(join(dir, "pause-me.mp4"), mp4Chunks(SIZE, 7));
    const cut = await heldUpload(example, page, file);
    const row = rowOf(page, "pause-me.mp4");
    await reaches(row, "uploading");
    await page.getByRole("button", { name: "Pause the upload of pause-me.mp4" }).click();
    await reaches(row, "paused");
    // The PATCH the pause abandoned, ended (see the reload's case).
    cut.drop();
    await page.getByRole("button", { name: "Resume the upload of pause-me.mp4" }).click();
    await reaches(row, "done");
    await expectResumedAtServerOffset(example, file, token);

    const other = await writeChunks(join(dir, "cancel-me.mp4"), mp4Chunks(SIZE, 8));
    const held = example.proxy.holdNext(isPatch, HOLD_AT);
    await choose(page, other);
    const stalled = await unlessFails(rowOf(page, "cancel-me.mp4"), held);
    const cancelled = rowOf(page, "cancel-me.mp4");
    await page.getByRole("button", { name: "Cancel the upload of cancel-me.mp4" }).click();
    stalled.drop();
    await reaches(cancelled, "error");
    await expect(cancelled.locator(".message").textContent()).resolves.toContain("Cancelled");
    // The upload was removed at the server (tus termination) before the row said so, and it left nothing.
    const upload = stalled.request.path;
    expect(example.proxy.requests.filter((r) => r.method === "DELETE")).toMatchObject([{ path: upload, status: 204 }]);
    const uploadId = upload.split("/").pop() as string;
    expect((await filesUnder(join(example.root, "videos/.media-intake-uploads"))).filter((name) => name.startsWith(uploadId))).toEqual([]);
    expect((await filesUnder(example.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path))).toEqual([`videos/${await computeMediaId(file)}.mp4`]);
  });
});
