import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);

it("npm run demo uploads four files and a resumable one cut mid-way, and prints what became of each", async () => {
  const { stdout } = await run(process.execPath, [resolve(import.meta.dirname, "../examples/demo.ts")]);
  const rows = Object.fromEntries(
    stdout
      .split("\n")
      .map((line) => line.split(/\s{2,}/))
      .filter((cells) => /^[0-9a-f]{16}$/.test(cells[2] ?? ""))
      .map((cells) => [cells[0], { http: cells[1], id: cells[2], type: cells[3], history: cells[5] }]),
  );
  expect(Object.keys(rows)).toEqual(["street.png", "clip.mp4", "broken.png", "street-copy.PNG", "field-video.mp4"]);
  expect(rows["street.png"]).toMatchObject({ http: expect.stringMatching(/^200 /), type: "Image", history: "New -> AIProcessing -> AIProcessed" });
  expect(rows["clip.mp4"]).toMatchObject({ http: expect.stringMatching(/^200 /), type: "Video", history: "New -> AIProcessing -> AIProcessed" });
  expect(rows["broken.png"]).toMatchObject({ http: "422 DETECTION_FAILED", history: "New -> AIProcessing -> Error" });
  expect(rows["street-copy.PNG"]?.id).toBe(rows["street.png"]?.id);
  // Cut in its second 1 MiB chunk, resumed from where the server had the bytes (not from zero).
  const resumed = rows["field-video.mp4"];
  expect(resumed).toMatchObject({ type: "Video", history: "New -> AIProcessing -> AIProcessed" });
  const [, cutAt, from] = resumed?.http.match(/^tus, cut at ([\d.]+) MiB, resumed from ([\d.]+) MiB$/) ?? [];
  expect(Number(from)).toBeGreaterThan(1);
  expect(Number(from)).toBeLessThanOrEqual(Number(cutAt));
});
