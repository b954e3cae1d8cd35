// What the guarantees' tests (test/guarantees-*.test.ts) start from: a fault fixture for user-9
// (helpers/fixture.ts), the client a host would run with short timeouts, faults injected once in
// the annotations service, and what a user checks once the dust settles.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { computeMediaId, recoverInterrupted } from "../../src/index.ts";
import type { FakeRequest, Fault } from "./fake-annotations.ts";
import { type FaultFixture, useFaultFixture } from "./fixture.ts";
import { filesUnder } from "./temp-dir.ts";

export const isPost = (r: FakeRequest) => r.method === "POST";
export const isStatus = (status: number) => (r: FakeRequest) => r.method === "PUT" && r.body === JSON.stringify({ MediaStatus: status });

/** Gives every test of the calling file a fresh fault fixture for user-9, and the checks below on it. */
export function useGuaranteesFixture() {
  const fixture: FaultFixture = useFaultFixture({ sub: "user-9" });

  /** The client a host would run: the service's token as its own, short timeouts for tests. */
  const client = (options: { timeoutMs?: number; totalTimeoutMs?: number; retries?: number } = {}) =>
    fixture.client({
      timeoutMs: options.timeoutMs ?? 2_000,
      totalTimeoutMs: options.totalTimeoutMs ?? 5_000,
      retry: { retries: options.retries ?? 0, baseDelayMs: 1 },
    });
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

  return { fixture, client, journalFolder, entriesLeft, faultOnce, expectConsistent, settle };
}
