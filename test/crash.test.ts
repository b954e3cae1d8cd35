// Crash safety: a real child process is killed with SIGKILL at each step of the flow, then
// recoverInterrupted runs; no orphan file, no record stuck in AIProcessing, nothing lost. The
// steps and the random crashes run under both durabilities ("process" and "power").
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { rm, writeFile } from "node:fs/promises";
import fc from "fast-check";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { beforeEach, describe, expect, it } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { computeMediaId, type Durability, MediaStatus, recoverInterrupted } from "../src/index.ts";
import type { FakeRequest } from "./helpers/fake-annotations.ts";
import { startChild as startChildProcess } from "./helpers/child.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const childScript = resolve(import.meta.dirname, "fixtures/crash-child.ts");
let upload: string;
let uploadId: string;

const fixture = useFaultFixture({ sub: "user-9" });

beforeEach(async () => {
  upload = join(fixture.root, "upload.mp4");
  const bytes = sampleMp4(3 << 20, 11);
  await writeFile(upload, bytes);
  uploadId = await computeMediaId(bytes);
});

/** Starts the child service (its intake and runs with `durability`); its printed lines are awaitable by prefix. */
function startChild(wait: "never" | "stdin" = "never", durability: Durability = "process") {
  return startChildProcess(childScript, { baseUrl: fixture.service.url, directories: fixture.directories, token: fixture.token, file: upload, name: "upload.mp4", wait, durability });
}

async function kill(child: ChildProcessWithoutNullStreams): Promise<void> {
  child.kill("SIGKILL");
  if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
}

/** Recovers at once: a dead process on this host is known dead by its pid and start time. */
async function recover() {
  return recoverInterrupted({ client: fixture.client({ token: fixture.token, retry: false }), directories: fixture.directories });
}

/** The files the flow left, without the upload's source file. */
async function filesLeft(): Promise<string[]> {
  return (await filesUnder(fixture.root)).filter((path) => path !== "upload.mp4");
}

/** A hook for the fake service: at the first request matching, `act` runs and the request hangs. */
function crashAt(match: (request: FakeRequest) => boolean, act: (request: FakeRequest) => void): Promise<void> {
  return new Promise((resolveCrash) => {
    fixture.intercept = (request) => {
      if (!match(request)) return undefined;
      fixture.intercept = undefined;
      act(request);
      resolveCrash();
      return "hang";
    };
  });
}

const isCreate = (r: FakeRequest) => r.method === "POST";
const isStatus = (status: number) => (r: FakeRequest) => r.method === "PUT" && r.body === JSON.stringify({ MediaStatus: status });
const stored = () => `videos/${uploadId}.mp4`;

// Under either durability: what survives a crash of the process is the same (only a power cut tells them apart).
describe.each(["process", "power"] as const)("a crash at each step, then recoverInterrupted (durability %s)", (durability) => {
  it("while the bytes are streaming: the temp file is swept, nothing else exists", async () => {
    const { child, line } = startChild("never", durability);
    await line("PROGRESS");
    await kill(child);
    expect((await filesLeft()).some((path) => path.endsWith(".partial"))).toBe(true);
    const report = await recover();
    expect(report.partialsRemoved).toHaveLength(1);
    expect(await filesLeft()).toEqual([]);
    expect(fixture.fake.records.size).toBe(0);
  });

  it("after the file landed, before the record was created: the record is created", async () => {
    const { child } = startChild("never", durability);
    await crashAt(isCreate, () => {});
    await kill(child);
    expect(fixture.fake.records.size).toBe(0);
    const report = await recover();
    expect(report.recordsCreated).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)).toMatchObject({ mediaStatus: MediaStatus.New, userId: "user-9", name: "upload.mp4", path: join(fixture.directories.videosDir, `${uploadId}.mp4`) });
    expect(await filesLeft()).toEqual([stored()]);
  });

  it("after the record was created, before the answer arrived: nothing to do, nothing doubled", async () => {
    const { child } = startChild("never", durability);
    await crashAt(isCreate, (request) => fixture.fake.handle(request));
    await kill(child);
    const report = await recover();
    expect(report.alreadyConsistent).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.New);
    expect(await filesLeft()).toEqual([stored()]);
  });

  it("right after AIProcessing was recorded: the record goes to Error", async () => {
    const { child } = startChild("never", durability);
    await crashAt(isStatus(2), (request) => fixture.fake.handle(request));
    await kill(child);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    const report = await recover();
    expect(report.markedError).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.Error);
    expect(await filesLeft()).toEqual([stored()]);
  });

  it("in the middle of processing: the record goes to Error", async () => {
    const { child, line } = startChild("never", durability);
    await line("IN_FN");
    await kill(child);
    const report = await recover();
    expect(report.markedError).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.Error);
    expect(await filesLeft()).toEqual([stored()]);
  });

  it("while AIProcessed was being recorded: the outcome was journaled, so the record ends AIProcessed", async () => {
    const { child, line } = startChild("stdin", durability);
    await line("IN_FN");
    const crashed = crashAt(isStatus(3), () => {});
    child.stdin.end("go\n");
    await crashed;
    await kill(child);
    const report = await recover();
    expect(report.statusesWritten).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessed);
  });

  it("a final status still pending in the background when the process dies lands after the restart", async () => {
    const { child, line } = startChild("stdin", durability);
    await line("IN_FN");
    fixture.intercept = (request) => (isStatus(3)(request) ? { status: 503 } : undefined);
    child.stdin.end("go\n");
    // The child answered its caller with the result: the status is pending, journaled.
    expect(await line("RESULT")).toBe('RESULT {"boxes":3}');
    await kill(child);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    fixture.intercept = undefined;
    const report = await recover();
    expect(report.statusesWritten).toEqual([uploadId]);
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    expect(await filesUnder(join(fixture.directories.videosDir, ".media-intake-journal"))).toEqual([]);
  });

  it("a finished run leaves nothing to recover", async () => {
    const { child, line } = startChild("stdin", durability);
    await line("IN_FN");
    child.stdin.end("go\n");
    expect(await line("RESULT")).toBe('RESULT {"boxes":3}');
    await once(child, "exit");
    const report = await recover();
    expect(report).toMatchObject({ recordsCreated: [], markedError: [], failed: [], live: 0 });
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    expect(await filesLeft()).toEqual([stored()]);
  });
});

describe("two processes sharing the directories", () => {
  it("a recovery leaves a live process's work alone, and it finishes", async () => {
    const { child, line } = startChild("stdin");
    await line("IN_FN");
    const report = await recover();
    const again = await recoverInterrupted({ client: fixture.client({ token: fixture.token, retry: false }), directories: fixture.directories });
    expect(report).toMatchObject({ live: 1, markedError: [], recordsCreated: [] });
    expect(again).toMatchObject({ live: 1, markedError: [] });
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    child.stdin.end("go\n");
    expect(await line("RESULT")).toBe('RESULT {"boxes":3}');
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessed);
  });

  it("the same content through two processes at once ends with one file and one record", async () => {
    const a = startChild("stdin");
    const b = startChild("stdin");
    await Promise.all([a.line("IN_FN"), b.line("IN_FN")]);
    expect(fixture.fake.records.size).toBe(1);
    expect(fixture.fake.log.filter((r) => r.method === "POST")).toHaveLength(2);
    a.child.stdin.end("go\n");
    b.child.stdin.end("go\n");
    expect(await a.line("RESULT")).toBe('RESULT {"boxes":3}');
    expect(await b.line("RESULT")).toBe('RESULT {"boxes":3}');
    expect(fixture.fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    expect((await filesLeft()).filter((f) => !f.startsWith("videos/.media-intake-journal"))).toEqual([stored()]);
    expect(await filesUnder(join(fixture.directories.videosDir, ".media-intake-journal"))).toEqual([]);
  });
});

describe.each(["process", "power"] as const)("crashes at random points (durability %s)", (durability) => {
  it("a process killed at any moment of the flow, then recovered at once, leaves everything consistent", async () => {
    const points = ["progress 1", "progress 2", "progress 3", "create sent", "create applied", "in detection", "AIProcessed sent"] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...points), fc.integer({ min: 0, max: 5 }), async (point, extraMs) => {
        fixture.fake.records.clear();
        await rm(fixture.directories.videosDir, { recursive: true, force: true });
        const crashed =
          point === "create sent" ? crashAt(isCreate, () => {}) : point === "create applied" ? crashAt(isCreate, (r) => fixture.fake.handle(r)) : point === "AIProcessed sent" ? crashAt(isStatus(3), () => {}) : undefined;
        const { child, line } = startChild(point === "AIProcessed sent" ? "stdin" : "never", durability);
        if (point.startsWith("progress")) await nthLine(child, "PROGRESS", Number(point.slice(-1)));
        if (point === "in detection" || point === "AIProcessed sent") await line("IN_FN");
        if (point === "AIProcessed sent") child.stdin.end("go\n");
        await crashed;
        // A few milliseconds more or less: the kill lands anywhere around the point.
        if (extraMs > 0) await new Promise((r) => setTimeout(r, extraMs));
        await kill(child);
        fixture.intercept = undefined;
        const report = await recover();
        expect(report.failed).toEqual([]);
        const left = await filesLeft();
        expect(left.filter((path) => path.endsWith(".partial") || path.includes(".media-intake-journal/"))).toEqual([]);
        const files = left.filter((path) => path.startsWith("videos/"));
        expect([...fixture.fake.records.values()].map((r) => String(r.path).slice(fixture.root.length + 1))).toEqual(files);
        for (const record of fixture.fake.records.values()) expect(record.mediaStatus).not.toBe(MediaStatus.AIProcessing);
      }),
      // 6 runs under each setting (10 under the one setting before there were two).
      { numRuns: 6 },
    );
  }, 60_000);
});

/** Resolves when `child` has printed `prefix` lines `count` times. */
function nthLine(child: ChildProcessWithoutNullStreams, prefix: string, count: number): Promise<void> {
  return new Promise((resolveCount) => {
    let seen = 0;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith(prefix) && ++seen === count) resolveCount();
    });
  });
}
