// The lifecycle's guarantees 5 to 7 (issue 9's numbering; docs/guarantees.md), for one content
// uploaded several times: a refused create never deletes the file another upload relies on, one
// content is one file under any extension, duplicates in flight share one run; and a property:
// two uploads of one content, each with a random fault on its create and a random abort, always
// end consistent.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { AnnotationsHttpError, intakeMedia, storeMedia, trackMediaProcessing } from "../src/index.ts";
import type { Fault } from "./helpers/fake-annotations.ts";
import { storageDirectoriesIn } from "./helpers/fixture.ts";
import { isPost, useGuaranteesFixture } from "./helpers/guarantees.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const { fixture, client, entriesLeft, expectConsistent, settle } = useGuaranteesFixture();

describe("5. a refused create never deletes the file another upload relies on", () => {
  it("two uploads of one content: the first's create is refused for its name, the second's record keeps its file", async () => {
    const png = samplePng(30, 30, 7);
    let firstPosted!: () => void;
    const firstSeen = new Promise<void>((resolve) => (firstPosted = resolve));
    let secondPosted!: () => void;
    const secondSeen = new Promise<void>((resolve) => (secondPosted = resolve));
    let firstDone!: () => void;
    const firstSettled = new Promise<void>((resolve) => (firstDone = resolve));
    fixture.intercept = (request) => {
      if (!isPost(request)) return undefined;
      // The service refuses the name "bad.png" for good, once the second upload is stored and asking.
      if (request.body.includes('"Name":"bad.png"')) {
        firstPosted();
        return { status: 422, after: secondSeen };
      }
      secondPosted();
      return { until: firstSettled };
    };
    const first = intakeMedia(png, { originalName: "bad.png", token: fixture.token, client: client(), directories: fixture.directories }).finally(firstDone);
    await firstSeen;
    const second = intakeMedia(png, { originalName: "good.png", token: fixture.token, client: client(), directories: fixture.directories });
    await expect(first).rejects.toBeInstanceOf(AnnotationsHttpError);
    const record = await second;
    expect(record).toMatchObject({ name: "good.png", created: true, fileCreated: false });
    expect(await readFile(record.path)).toEqual(png);
    await settle();
    await expectConsistent();
  });
});

describe("6. one content, one file", () => {
  it("the same bytes as .mp4 then .mov and .m4v: one file, named by every answer", async () => {
    const { sampleMp4 } = await import("../examples/sample-media.ts");
    const bytes = sampleMp4(50_000, 3);
    const first = await intakeMedia(bytes, { originalName: "clip.mp4", token: fixture.token, client: client(), directories: fixture.directories });
    const second = await intakeMedia(bytes, { originalName: "clip.MOV", token: fixture.token, client: client(), directories: fixture.directories });
    const third = await storeMedia(bytes, { originalName: "clip.m4v", directories: fixture.directories });
    expect(first).toMatchObject({ fileCreated: true, created: true });
    expect(second).toMatchObject({ fileCreated: false, created: false, path: first.path });
    expect(third).toMatchObject({ created: false, path: first.path });
    expect((await filesUnder(fixture.root)).filter((path) => path.startsWith("videos/") && !path.includes("journal"))).toEqual([`videos/${first.id}.mp4`]);
  });

  it("a record that names a file that is not here (a moved volume): the upload's file is kept and named by `file`; one that is there keeps one file", async () => {
    const png = samplePng(26, 26, 12);
    const first = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const moved = storageDirectoriesIn(await makeTempDir());
    const kept = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: moved });
    expect(kept).toMatchObject({ path: first.path, file: first.path, fileCreated: false });
    expect(await filesUnder(moved.imagesDir)).toEqual([]);
    await rm(first.path);
    const again = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client(), directories: moved });
    expect(again).toMatchObject({ path: first.path, file: join(moved.imagesDir, `${first.id}.png`), fileCreated: true, created: false });
    expect(await readFile(again.file ?? "")).toEqual(Buffer.from(png));
  });

  it(".jpg and .jpeg of the same bytes at the same moment: one file, one record", async () => {
    const png = samplePng(12, 12, 9);
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), png]);
    const results = await Promise.all(["a.jpg", "b.jpeg", "c.JPG", "d.jpeg"].map((name) => intakeMedia(jpeg, { originalName: name, token: fixture.token, client: client(), directories: fixture.directories, verify: "off" })));
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    expect(results.filter((r) => r.fileCreated)).toHaveLength(1);
    await expectConsistent();
  });
});

describe("7. duplicates in flight share one run", () => {
  it("20 identical uploads at once all succeed with the same result from one detection", async () => {
    const png = samplePng(20, 20, 11);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const detect = trackMediaProcessing(async () => {
      calls += 1;
      await gate;
      return { boxes: 7 };
    }, { client: client(), directories: fixture.directories });
    const runs = Array.from({ length: 20 }, async () => detect(await intakeMedia(png, { originalName: "same.png", token: fixture.token, client: client(), directories: fixture.directories })));
    await vi.waitFor(() => expect(calls).toBe(1));
    release();
    expect(await Promise.all(runs)).toEqual(Array.from({ length: 20 }, () => ({ boxes: 7 })));
    await expectConsistent();
  });
});

describe("property: random interleavings, faults and aborts always end consistent", () => {
  it("two uploads of one content, each with a random fault on its create and a random abort", async () => {
    const faults: Array<Fault | undefined> = [undefined, "commit-hang", "commit-garbage", "reset", { status: 500 }, { status: 422 }];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ fault: fc.constantFrom(...faults), abortAfterMs: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }), name: fc.constantFrom("a.png", "b.PNG") }), {
          minLength: 2,
          maxLength: 2,
        }),
        fc.integer({ min: 0, max: 250 }),
        async (uploads, seed) => {
          fixture.fake.records.clear();
          fixture.root = await makeTempDir();
          fixture.directories = storageDirectoriesIn(fixture.root);
          const png = samplePng(16, 16, seed);
          const pending = [...uploads];
          fixture.intercept = (request) => (isPost(request) ? pending.shift()?.fault : undefined);
          await Promise.allSettled(
            uploads.map((upload) => {
              const controller = new AbortController();
              if (upload.abortAfterMs !== undefined) setTimeout(() => controller.abort(new Error("aborted")), upload.abortAfterMs);
              return intakeMedia(png, { originalName: upload.name, token: fixture.token, client: client({ timeoutMs: 150 }), directories: fixture.directories, signal: controller.signal });
            }),
          );
          fixture.intercept = undefined;
          // What startRecovery does while the service runs: passes until nothing is left.
          await vi.waitFor(
            async () => {
              await settle();
              expect(await entriesLeft()).toEqual([]);
            },
            { timeout: 10_000, interval: 50 },
          );
          await expectConsistent();
          return true;
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 25) },
    );
  }, 120_000);
});
