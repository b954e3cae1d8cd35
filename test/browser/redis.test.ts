// The page against the example in Redis mode (REDIS_URL, a real redis-server as test/redis uses,
// and `npm run example:worker`): the upload's answer says where to poll the job, and the row
// follows it to done with the worker's detections.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detect } from "../../examples/express/detector.ts";
import { samplePng } from "../../examples/sample-media.ts";
import { computeMediaId, MediaStatus } from "../../src/index.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";
import { choose, openPage, reaches, rowOf, startExample } from "./helpers.ts";

describe("the upload page in Redis mode", () => {
  it("uploads an image to done, detection on a worker; chosen again, it is not sent again", async () => {
    const redis = await startRedisServer();
    const example = await startExample({ env: { REDIS_URL: redis.url }, worker: true });
    const token = await example.token("alice");
    const page = await openPage(example, token);
    const png = join(await makeTempDir(), "harbour.png");
    await writeFile(png, samplePng(120, 90, 21));
    const id = await computeMediaId(png);

    await choose(page, png);
    const row = rowOf(page, "harbour.png");
    await reaches(row, "done");
    expect(await row.getAttribute("data-media-id")).toBe(id);
    expect(await row.getAttribute("data-status")).toBe("AIProcessed");
    const detections = await detect(join(example.root, `images/${id}.png`), id);
    expect(await row.locator(".detections li").allTextContents()).toEqual(detections.map((d) => `${d.label} ${Math.round(d.confidence * 100)}%`));
    // The tus finish said where to poll the job, and the page polled it.
    expect(example.proxy.requests.some((r) => r.method === "GET" && r.path === `/detections/${id}`)).toBe(true);
    const record = await fetch(`${example.direct}/media/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(await record.json()).toMatchObject({ id, userId: "alice", mediaStatus: MediaStatus.AIProcessed });

    const before = example.proxy.requests.length;
    await choose(page, png);
    const again = rowOf(page, "harbour.png").first();
    await reaches(again, "done");
    await expect(again.locator(".message").textContent()).resolves.toContain("Already there");
    expect(example.proxy.requests.slice(before).filter((r) => r.path.startsWith("/files"))).toEqual([]);
  });
});
