// A stored upload whose detection polls go unanswered for a while, through the page: the row rides
// out the outage (no answer, a 502, a 503 with Retry-After) and ends done with the record's status;
// a poll refused for good (404) ends the row "Stored", never "Failed — The upload failed".
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { samplePng } from "../../examples/sample-media.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";
import { choose, openPage, reaches, rowOf, startExample } from "./helpers.ts";
import type { ProxiedRequest } from "./proxy.ts";

const isPoll = (request: ProxiedRequest) => request.method === "GET" && request.path.startsWith("/detections/");

describe("the upload page while detection cannot be read", () => {
  it("rides out polls that go unanswered, then shows the status; a poll refused for good says the media are stored", async () => {
    const example = await startExample({ env: { DETECTOR_DELAY_MS: "300" } });
    const page = await openPage(example, await example.token("alice"));
    const dir = await makeTempDir();
    const first = join(dir, "harbour.png");
    await writeFile(first, samplePng(120, 80, 21));
    example.proxy.failNext(isPoll, ["drop", { status: 502 }, { status: 503, headers: { "retry-after": "1" } }]);
    await choose(page, first);
    const row = rowOf(page, "harbour.png");
    await reaches(row, "done");
    expect(await row.getAttribute("data-status")).toBe("AIProcessed");
    expect(example.proxy.requests.filter(isPoll).length).toBeGreaterThanOrEqual(4);

    const second = join(dir, "quay.png");
    await writeFile(second, samplePng(120, 80, 22));
    example.proxy.failNext(isPoll, [{ status: 404, body: JSON.stringify({ error: { code: "NOT_FOUND", message: "No detection job." } }) }]);
    await choose(page, second);
    const stored = rowOf(page, "quay.png");
    await reaches(stored, "done");
    expect(await stored.getAttribute("data-outcome")).toBe("status-unknown");
    await expect(stored.locator(".state").textContent()).resolves.toBe("Stored");
    const message = await stored.locator(".message").textContent();
    expect(message).toContain("Stored: the media are kept.");
    expect(message).not.toMatch(/upload failed/i);
  });
});
