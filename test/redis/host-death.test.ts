// A host that dies for good: its intake or its run journaled on Redis is settled by another
// process (another host's view: another journal client, on the same Redis) once the dead host's
// heartbeat lapses, with no file of ours coordinating anything.
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { sampleMp4 } from "../../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, MediaStatus, recoverInterrupted, type StorageDirectories } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { startChild } from "../helpers/child.ts";
import type { FakeAnnotations, FakeRequest, Fault } from "../helpers/fake-annotations.ts";
import { startFaultFixture } from "../helpers/fixture.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { filesUnder } from "../helpers/temp-dir.ts";

const childScript = resolve(import.meta.dirname, "../fixtures/crash-child.ts");
let root: string;
let directories: StorageDirectories;
let fake: FakeAnnotations;
let service: { url: string; close: () => Promise<void> };
let token: string;
let intercept: ((request: FakeRequest) => Fault | undefined) | undefined;
let redis: { url: string; prefix: string };
let upload: string;
let uploadId: string;

beforeEach(async () => {
  intercept = undefined;
  ({ root, directories, fake, service, token } = await startFaultFixture((request) => intercept?.(request)));
  onTestFinished(() => service.close());
  redis = { url: (await startRedisServer()).url, prefix: "hosts" };
  upload = join(root, "upload.mp4");
  const bytes = sampleMp4(2 << 20, 3);
  await writeFile(upload, bytes);
  uploadId = await computeMediaId(bytes);
});

/** The settling another host runs (startRecovery's pass), through its own Redis journal client. */
async function settleFromAnotherHost() {
  const journal = createRedisJournal({ connection: redis.url, prefix: redis.prefix, heartbeatMs: 100 });
  onTestFinished(() => journal.close());
  const client = createAnnotationsClient({ baseUrl: service.url, token, retry: false });
  let report: Awaited<ReturnType<typeof recoverInterrupted>> | undefined;
  // Until the dead host's heartbeat has lapsed, its work counts as live and is left alone.
  await vi.waitFor(
    async () => {
      report = await recoverInterrupted({ client, directories, journal });
      expect(report.live).toBe(0);
    },
    { timeout: 10_000, interval: 100 },
  );
  return report!;
}

describe("a host that dies for good", () => {
  it("mid-intake, after its file landed: another host creates the record", async () => {
    const crashed = new Promise<void>((resolveCrash) => {
      intercept = (request) => {
        if (request.method !== "POST") return undefined;
        resolveCrash();
        return "hang";
      };
    });
    const host = startChild(childScript, { baseUrl: service.url, directories, token, file: upload, name: "upload.mp4", wait: "never", redis });
    await crashed;
    await host.kill();
    intercept = undefined;
    const report = await settleFromAnotherHost();
    expect(report.recordsCreated).toEqual([uploadId]);
    expect(fake.records.get(uploadId)).toMatchObject({ mediaStatus: MediaStatus.New, userId: "user-9", path: join(directories.videosDir, `${uploadId}.mp4`) });
    expect((await filesUnder(root)).filter((path) => path.startsWith("videos/"))).toEqual([`videos/${uploadId}.mp4`]);
  });

  it("mid-detection: another host moves the record from AIProcessing to Error", async () => {
    const host = startChild(childScript, { baseUrl: service.url, directories, token, file: upload, name: "upload.mp4", wait: "stdin", redis });
    await host.line("IN_FN");
    expect(fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.AIProcessing);
    await host.kill();
    const report = await settleFromAnotherHost();
    expect(report.markedError).toEqual([uploadId]);
    expect(fake.records.get(uploadId)?.mediaStatus).toBe(MediaStatus.Error);
  });
});
