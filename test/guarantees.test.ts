// The lifecycle's guarantees under unknown outcomes, duplicates and faults (issue 9): each case
// injects a fault in a real loopback annotations server of ours and checks what a user would:
// record <=> file, nothing stuck in AIProcessing, no temp file, nothing left in the journal.
import { mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import {
  AnnotationsHttpError,
  computeMediaId,
  createFileJournal,
  httpErrorFor,
  intakeMedia,
  type JournalHandle,
  type MediaJournal,
  MediaRecordPendingError,
  type MediaStatusChange,
  MediaStatusUpdateError,
  recoverInterrupted,
  type RecoveryReport,
  startRecovery,
  storeMedia,
  sweepPartials,
  trackMediaProcessing,
} from "../src/index.ts";
import { processOwnerKey } from "../src/utils/process-identity.ts";
import type { FakeRequest, Fault } from "./helpers/fake-annotations.ts";
import { storageDirectoriesIn, useFaultFixture } from "./helpers/fixture.ts";
import { filesUnder, makeTempDir } from "./helpers/temp-dir.ts";

const fixture = useFaultFixture({ sub: "user-9" });

/** The client a host would run: the service's token as its own, short timeouts for tests. */
const client = (options: { timeoutMs?: number; totalTimeoutMs?: number; retries?: number } = {}) =>
  fixture.client({
    timeoutMs: options.timeoutMs ?? 2_000,
    totalTimeoutMs: options.totalTimeoutMs ?? 5_000,
    retry: { retries: options.retries ?? 0, baseDelayMs: 1 },
  });
const isPost = (r: FakeRequest) => r.method === "POST";
const isStatus = (status: number) => (r: FakeRequest) => r.method === "PUT" && r.body === JSON.stringify({ MediaStatus: status });
const journalFolder = () => join(fixture.directories.videosDir, ".media-intake-journal");
/** The journal's files that hold entries: logs (a log goes with its last entry) and 0.1.0's entry files. */
const entriesLeft = async () => (await readdir(journalFolder()).catch(() => [] as string[])).filter((name) => name.endsWith(".log") || name.endsWith(".json"));

/** The faults a test injects, once each, in order of the matchers. */
function faultOnce(match: (request: FakeRequest) => boolean, fault: Fault): Promise<FakeRequest> {
  return new Promise((resolve) => {
    const previous = fixture.intercept;
    fixture.intercept = (request) => {
      if (!match(request)) return previous?.(request);
      fixture.intercept = previous;
      resolve(request);
      return fault;
    };
  });
}

/**
 * What a user checks after the dust settles: every record names a file with its content, every
 * stored file has the record that names it, no record in AIProcessing, no temp file, no entry.
 */
async function expectConsistent(): Promise<void> {
  const files = (await filesUnder(fixture.root)).filter((path) => path.startsWith("videos/") || path.startsWith("images/"));
  expect(files.filter((path) => path.includes(".media-intake-journal/"))).toEqual([]);
  const media = files.filter((path) => !path.includes(".media-intake-journal/"));
  for (const path of media) expect(path).toMatch(/^(videos|images)\/[0-9a-f]{16}\.[a-z0-9]+$/);
  const named = [...fixture.fake.records.values()].map((record) => String(record.path));
  expect(named.map((path) => path.slice(fixture.root.length + 1)).sort()).toEqual(media.sort());
  for (const record of fixture.fake.records.values()) {
    expect(record.mediaStatus).not.toBe(2);
    expect(await computeMediaId(String(record.path))).toBe(record.id);
  }
}

/** One settling pass with the service healthy, as `startRecovery` makes every few seconds. */
const settle = () => recoverInterrupted({ client: client(), directories: fixture.directories });

describe("1. an outcome that is not known is never treated as a failure", () => {
  for (const fault of ["commit-hang", "commit-garbage"] as const) {
    it(`create committed, then ${fault === "commit-hang" ? "no answer in time" : "an unreadable answer"}: the file stays, the record names it`, async () => {
      void faultOnce(isPost, fault);
      const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client({ timeoutMs: 200 }), directories: fixture.directories }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaRecordPendingError);
      expect(fixture.fake.records.size).toBe(1);
      // Settled by the background settler of this process (the record is found), not by luck.
      await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]), { timeout: 10_000 });
      await expectConsistent();
    });
  }

  it("the uploader disconnects while the create is in flight: rejects with the reason, the record and file stay together", async () => {
    const controller = new AbortController();
    const reason = new Error("client went away");
    void faultOnce(isPost, "commit-hang").then(() => controller.abort(reason));
    await expect(intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories, signal: controller.signal })).rejects.toBe(reason);
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]), { timeout: 10_000 });
    await expectConsistent();
    expect(fixture.fake.records.size).toBe(1);
  });

  it("the connection drops before the create is applied: the record is created in the background", async () => {
    void faultOnce(isPost, "reset");
    const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    await vi.waitFor(() => expect(fixture.fake.records.size).toBe(1), { timeout: 10_000 });
    expect(fixture.fake.records.get((error as MediaRecordPendingError).id)).toMatchObject({ userId: "user-9", name: "a.png", mediaStatus: 1 });
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]), { timeout: 10_000 });
    await expectConsistent();
  });

  it("AIProcessing applied but not answered in time: the function does not run, and the record does not stay in AIProcessing", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    void faultOnce(isStatus(2), "commit-hang");
    let ran = false;
    const detect = trackMediaProcessing(() => (ran = true), { client: client({ timeoutMs: 200 }), directories: fixture.directories });
    await expect(detect(media)).rejects.toBeInstanceOf(MediaStatusUpdateError);
    expect(ran).toBe(false);
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6), { timeout: 10_000 });
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]));
  });
});

describe("2. every run ends with its status recorded", () => {
  it("AIProcessed that cannot land within the client's deadline is written once the service is back", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    let outage = true;
    fixture.intercept = (request) => (outage && isStatus(3)(request) ? { status: 503 } : undefined);
    const changes: MediaStatusChange[] = [];
    const detect = trackMediaProcessing(() => ({ boxes: 4 }), {
      client: client({ totalTimeoutMs: 300, retries: 2 }),
      directories: fixture.directories,
      onStatusChange: (change) => changes.push(change),
    });
    expect(await detect(media)).toEqual({ boxes: 4 });
    expect(changes.at(-1)).toMatchObject({ to: 3, pending: true });
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(2);
    expect(await entriesLeft()).toHaveLength(1);
    outage = false;
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3), { timeout: 15_000 });
    await vi.waitFor(async () => expect(await entriesLeft()).toEqual([]));
  });

  it("a detector error whose Error update fails is rethrown as is, and Error lands later", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    void faultOnce(isStatus(6), { status: 503 });
    const failure = new Error("model OOM");
    const detect = trackMediaProcessing(() => Promise.reject(failure), { client: client(), directories: fixture.directories });
    await expect(detect(media)).rejects.toBe(failure);
    await vi.waitFor(() => expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(6), { timeout: 10_000 });
  });
});

describe("4. the journal is correct by construction", () => {
  it("two recoveries at once settle a dead run once", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    fixture.fake.records.get(media.id)!.mediaStatus = 2;
    // A run entry left by a process that is gone: another journal's owner, made dead by name.
    const folder = journalFolder();
    const dead = (await readdir(folder)).find((name) => name.endsWith(".alive"))!.replace(/\+\d+\.alive$/, "+1");
    await writeFile(join(folder, `${media.id}.run.0123456789ab.${dead}.json`), JSON.stringify({ kind: "run", id: media.id, state: "active", at: Date.now() }));
    const reports = await Promise.all([
      recoverInterrupted({ client: client(), directories: fixture.directories, journal: createFileJournal(folder) }),
      recoverInterrupted({ client: client(), directories: fixture.directories, journal: createFileJournal(folder) }),
    ]);
    expect(reports.flatMap((r) => r.markedError)).toEqual([media.id]);
    expect(fixture.fake.log.filter(isStatus(6))).toHaveLength(1);
    expect(await entriesLeft()).toEqual([]);
  });

  it("a dead run's entry never sets Error while a live run of the same ID is in progress", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const folder = journalFolder();
    const dead = (await readdir(folder)).find((name) => name.endsWith(".alive"))!.replace(/\+\d+\.alive$/, "+1");
    await writeFile(join(folder, `${media.id}.run.0123456789ab.${dead}.json`), JSON.stringify({ kind: "run", id: media.id, state: "active", at: 1 }));
    let release!: () => void;
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    const detect = trackMediaProcessing(
      () =>
        new Promise<string>((resolve) => {
          running();
          release = () => resolve("done");
        }),
      { client: client(), directories: fixture.directories },
    );
    const result = detect(media);
    await started;
    const report = await settle();
    expect(report.markedError).toEqual([]);
    expect(report.live).toBeGreaterThan(0);
    expect(fixture.fake.log.filter(isStatus(6))).toEqual([]);
    release();
    expect(await result).toBe("done");
    // The dead entry is settled once the live run has ended: the record is AIProcessed, not touched.
    expect(await settle()).toMatchObject({ alreadyConsistent: [media.id] });
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
    expect(await entriesLeft()).toEqual([]);
  });

  it("a journal failure on cleanup never replaces the outcome", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const files = createFileJournal(journalFolder());
    const failing: MediaJournal = {
      ...files,
      async add(entry) {
        const handle = await files.add(entry);
        return { key: handle.key, entry: handle.entry, update: (changes) => handle.update(changes), remove: () => Promise.reject(new Error("EIO: journal disk failed")) } satisfies JournalHandle;
      },
    };
    expect(await trackMediaProcessing(() => "result", { client: client(), journal: failing })(media)).toBe("result");
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
  });

  it("a run whose journal entry cannot be written does not start, and its answer says the media are kept with their record", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const files = createFileJournal(journalFolder());
    const failing: MediaJournal = { ...files, add: () => Promise.reject(new Error("EIO: journal disk failed")) };
    const detector = vi.fn(() => "result");
    const error = await trackMediaProcessing(detector, { client: client(), journal: failing })(media).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "JournalUnavailableError", code: "JOURNAL_UNAVAILABLE", keptMediaId: media.id });
    expect(detector).not.toHaveBeenCalled();
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(1);
    const answer = httpErrorFor(error);
    expect(answer).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", mediaId: media.id, headers: { "retry-after": "5" } });
    expect(answer.message).toContain(`The media ${media.id} are stored with their record`);
    expect(answer.message).not.toContain("nothing was kept");
  });
});

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

describe("3. recovery is prompt and continuous", () => {
  it("startRecovery sweeps a dead upload's temp file at once, then settles on every pass and sweeps only when due", async () => {
    const dead = processOwnerKey.replace(/\+\d+$/, "+1");
    await mkdir(fixture.directories.imagesDir, { recursive: true });
    await writeFile(join(fixture.directories.imagesDir, `.0123456789abcdef.${dead}.partial`), "half an upload");
    const reports: RecoveryReport[] = [];
    let passed!: () => void;
    let wanted = 1;
    const enough = () => new Promise<void>((resolve) => (passed = resolve));
    let reached = enough();
    const recovery = startRecovery({
      client: client(),
      directories: fixture.directories,
      intervalMs: 20,
      sweepIntervalMs: 3_600_000,
      onPass: (report) => {
        reports.push(report);
        if (reports.length >= wanted) passed();
      },
    });
    await reached;
    expect(reports[0]?.partialsRemoved).toEqual([join(fixture.directories.imagesDir, `.0123456789abcdef.${dead}.partial`)]);
    // Work handed over meanwhile is settled by a later pass; temp files wait for the next sweep.
    await writeFile(join(fixture.directories.imagesDir, `.fedcba9876543210.${dead}.partial`), "another");
    void faultOnce(isPost, "commit-hang");
    const error = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client({ timeoutMs: 200 }), directories: fixture.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    wanted = reports.length + 3;
    reached = enough();
    await reached;
    await recovery.stop();
    expect(await entriesLeft()).toEqual([]);
    expect(reports.slice(1).flatMap((report) => report.partialsRemoved)).toEqual([]);
    expect((await readdir(fixture.directories.imagesDir)).filter((name) => name.endsWith(".partial"))).toHaveLength(1);
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
