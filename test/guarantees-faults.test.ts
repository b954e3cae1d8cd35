// The lifecycle's other promises on this path (8 in issue 9's numbering; docs/guarantees.md):
// an abort rejects at once while the Error update hangs, a throwing token() loses nothing, a
// refusal or a 409 after a retried POST keeps the file a first attempt relied on, sweepPartials
// spares a slow upload's temp file, and an unreadable stored file leaks no file handle.
import { mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { AnnotationsHttpError, computeMediaId, intakeMedia, storeMedia, sweepPartials, trackMediaProcessing } from "../src/index.ts";
import { isPost, isStatus, useGuaranteesFixture } from "./helpers/guarantees.ts";

const { fixture, client, entriesLeft, faultOnce, expectConsistent } = useGuaranteesFixture();

describe("8. other promises on this path", () => {
  it("an abort rejects at once with signal.reason while the Error update still hangs", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const errorSent = faultOnce(isStatus(6), "hang");
    const controller = new AbortController();
    const reason = new Error("request aborted");
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const detect = trackMediaProcessing(
      (_m, { signal }) =>
        new Promise((_, reject) => {
          started();
          signal.addEventListener("abort", () => reject(new Error("detector stopped")));
        }),
      { client: client({ timeoutMs: 300 }), directories: fixture.directories },
    );
    const outcome = detect.with({ signal: controller.signal })(media);
    await running;
    controller.abort(reason);
    await expect(outcome).rejects.toBe(reason);
    // The Error update is under way (or not yet sent) after the call rejected: it does not hold the caller.
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(2);
    await errorSent;
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6), { timeout: 10_000 });
  });

  it("a throwing token() neither replaces the detector's error nor loses its result", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    let calls = 0;
    const flaky = () => {
      calls += 1;
      if (calls > 1) throw new Error("token store down");
      return fixture.token;
    };
    const failure = new Error("bad frame");
    await expect(trackMediaProcessing(() => Promise.reject(failure), { client: client(), token: flaky, directories: fixture.directories })(media)).rejects.toBe(failure);
    calls = 0;
    expect(await trackMediaProcessing(() => "kept", { client: client(), token: flaky, directories: fixture.directories })(media)).toBe("kept");
    // The statuses the token could not carry land with the service's own.
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3), { timeout: 10_000 });
  });

  it("a refusal after a retried POST is confirmed before the file goes: a first attempt that landed keeps it", async () => {
    const png = samplePng(14, 14, 3);
    // The first attempt lands but its answer is lost; the retry is refused.
    void faultOnce(isPost, "commit-hang").then(() => faultOnce(isPost, { status: 422 }));
    const error = await intakeMedia(png, { originalName: "a.png", token: fixture.token, client: client({ timeoutMs: 200, retries: 1 }), directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnnotationsHttpError);
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]), { timeout: 10_000 });
    await expectConsistent();
    expect(fixture.fake.records.size).toBe(1);
  });

  it("a refusal after a retried POST with no first attempt landed removes the file, and never creates the record", async () => {
    void faultOnce(isPost, "reset").then(() => faultOnce(isPost, { status: 422 }));
    const error = await intakeMedia(samplePng(14, 14, 4), { originalName: "a.png", token: fixture.token, client: client({ retries: 1 }), directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnnotationsHttpError);
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]), { timeout: 10_000 });
    await expectConsistent();
    expect(fixture.fake.records.size).toBe(0);
    // The refused retry is the only POST that reached the service (the reset one was dropped): no create from the settler.
    expect(fixture.fake.log.filter(isPost)).toHaveLength(1);
  });

  it("a 409 after a retried POST is ours only when the record holds what we sent", async () => {
    const png = samplePng(14, 14, 2);
    const id = await computeMediaId(png);
    // The first attempt is lost; meanwhile another user's upload of the same content lands.
    void faultOnce(isPost, "reset").then(() => {
      fixture.fake.records.set(id, { id, name: "theirs.png", path: join(fixture.directories.imagesDir, `${id}.png`), mediaType: 2, mediaStatus: 1, userId: "someone-else" });
    });
    const media = await intakeMedia(png, { originalName: "mine.png", token: fixture.token, client: client({ retries: 2 }), directories: fixture.directories });
    expect(media).toMatchObject({ created: false, userId: "someone-else" });
  });

  it("sweepPartials never removes a live upload's temp file, however slow", async () => {
    let more!: () => void;
    const resumed = new Promise<void>((resolve) => (more = resolve));
    const slow = Readable.from(
      (async function* () {
        yield samplePng().subarray(0, 100);
        await resumed;
        yield samplePng().subarray(100);
      })(),
    );
    const storing = storeMedia(slow, { originalName: "slow.png", directories: fixture.directories });
    await vi.waitFor(async () => expect((await readdir(fixture.directories.imagesDir).catch(() => [])).some((n) => n.endsWith(".partial"))).toBe(true));
    expect(await sweepPartials(fixture.directories, { olderThanMs: 0 })).toEqual([]);
    more();
    expect((await storing).created).toBe(true);
  });

  it("an unreadable stored file fails the store without leaking a file handle", async () => {
    const png = samplePng(9, 9, 9);
    const id = await computeMediaId(png);
    await mkdir(fixture.directories.imagesDir, { recursive: true });
    // A symlink loop where the file should be: link says EEXIST, open says ELOOP.
    await symlink(`${id}.png`, join(fixture.directories.imagesDir, `${id}.png`));
    const before = (await readdir("/proc/self/fd")).length;
    await expect(storeMedia(png, { originalName: "x.png", directories: fixture.directories })).rejects.toThrow(/ELOOP|too many symbolic links/i);
    expect((await readdir("/proc/self/fd")).length).toBe(before);
    expect((await readdir(fixture.directories.imagesDir)).filter((n) => n.endsWith(".partial"))).toEqual([]);
  });
});
