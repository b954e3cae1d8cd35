// The details of a row, through the page in Chromium: no rate nor time left once the bytes stop
// (paused, cancelled), focus kept on a control after Pause, Resume and Cancel pressed from the
// keyboard, a user's cancel shown "Cancelled" (data-state stays "error"), the reason in a live
// region; a pasted "Bearer …" token taken, an expired one said to be expired.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { samplePng } from "../../examples/sample-media.ts";
import { signToken } from "../helpers/fixture.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";
import { choose, MiB, mp4Chunks, openPage, reaches, rowOf, secret, startExample, unlessFails, writeChunks } from "./helpers.ts";
import type { ProxiedRequest } from "./proxy.ts";

const isPatch = (request: ProxiedRequest) => request.method === "PATCH" && request.path.startsWith("/files/");
const focused = (page: import("playwright-core").Page) => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.className ?? "");

describe("a row's details", () => {
  it("keyboard Pause, Resume, Cancel: focus stays on a control, no rate once stopped, a neutral Cancelled, the reason announced", async () => {
    const example = await startExample();
    const page = await openPage(example, await example.token("alice"));
    const file = await writeChunks(join(await makeTempDir(), "keys.mp4"), mp4Chunks(24 * MiB, 12));
    const held = example.proxy.holdNext(isPatch, 8 * MiB);
    await choose(page, file);
    const row = rowOf(page, "keys.mp4");
    const cut = await unlessFails(row, held);
    await reaches(row, "uploading");

    await page.getByRole("button", { name: "Pause the upload of keys.mp4" }).focus();
    await page.keyboard.press("Enter");
    await reaches(row, "paused");
    expect(await focused(page)).toBe("Resume the upload of keys.mp4");
    expect(await row.locator(".rate").textContent()).not.toMatch(/\/s|left/);
    cut.drop();
    await page.keyboard.press("Enter");
    await reaches(row, "uploading");
    expect(await focused(page)).toBe("Pause the upload of keys.mp4");

    await page.getByRole("button", { name: "Cancel the upload of keys.mp4" }).focus();
    await page.keyboard.press("Enter");
    await reaches(row, "error");
    await row.and(page.locator("[data-outcome=cancelled]")).waitFor();
    expect(await focused(page)).toBe("upload");
    await expect(row.locator(".state").textContent()).resolves.toBe("Cancelled");
    expect(await row.locator(".rate").textContent()).not.toMatch(/\/s|left/);
    expect(await row.locator(".message").getAttribute("aria-live")).toBe("polite");
    await expect(row.locator(".message").textContent()).resolves.toContain("Cancelled");
  });

  it("takes a pasted \"Bearer …\" token; says an expired token has expired", async () => {
    const example = await startExample();
    const page = await openPage(example, `Bearer ${await example.token("alice")}`);
    const dir = await makeTempDir();
    await writeFile(join(dir, "pasted.png"), samplePng(90, 60, 31));
    await choose(page, join(dir, "pasted.png"));
    await reaches(rowOf(page, "pasted.png"), "done");

    await page.fill("input[name=token]", await signToken("alice", secret, Math.floor(Date.now() / 1000) - 60));
    await writeFile(join(dir, "late.png"), samplePng(90, 60, 32));
    await choose(page, join(dir, "late.png"));
    const late = rowOf(page, "late.png");
    await late.and(page.locator("[data-state=error]")).waitFor();
    await expect(late.locator(".message").textContent()).resolves.toContain("the token has expired");
  });
});
