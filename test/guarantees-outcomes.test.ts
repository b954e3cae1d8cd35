// The lifecycle's guarantees 1 to 3 (issue 9's numbering; docs/guarantees.md): an outcome that
// is not known is never treated as a failure, every run ends with its status recorded, and
// recovery is prompt and continuous. Each case injects a fault in a real loopback annotations
// server of ours and checks what a user would: record <=> file, nothing stuck in AIProcessing,
// nothing left in the journal.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import {
  intakeMedia,
  MediaRecordPendingError,
  type MediaStatusChange,
  MediaStatusUpdateError,
  type RecoveryReport,
  startRecovery,
  trackMediaProcessing,
} from "../src/index.ts";
import { processOwnerKey } from "../src/utils/process-identity.ts";
import { isPost, isStatus, useGuaranteesFixture } from "./helpers/guarantees.ts";

const { fixture, client, entriesLeft, faultOnce, expectConsistent } = useGuaranteesFixture();

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
