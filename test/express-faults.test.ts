// The Express example as users run it (`npm run example:express`, configured by environment),
// driven over HTTP while the annotations service in front of it faults, and killed with SIGKILL
// and restarted at once: it must end consistent within 45 s, without a second restart.
import { resolve } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId } from "../src/index.ts";
import { startChild } from "./helpers/child.ts";
import type { FakeRequest, Fault } from "./helpers/fake-annotations.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const serverScript = resolve(import.meta.dirname, "../examples/express/server.ts");
const secret = "express-faults-secret-0123456789abcdef";

const fixture = useFaultFixture({ sub: "alice", secret });

/** Starts the example; resolves once it listens. */
async function startExample(env: Record<string, string> = {}) {
  const example = startChild(serverScript, null, {
    PORT: "0",
    ANNOTATIONS_URL: fixture.service.url,
    VIDEOS_DIR: fixture.directories.videosDir,
    IMAGES_DIR: fixture.directories.imagesDir,
    JWT_SECRET: secret,
    SERVICE_TOKEN: "service-token",
    ANNOTATIONS_TIMEOUT_MS: "300",
    ANNOTATIONS_DEADLINE_MS: "1000",
    RECOVERY_INTERVAL_MS: "200",
    ...env,
  });
  const url = (await example.match(/"msg":"listening on (http:\/\/[^"]+)"/))[1] as string;
  return { ...example, url };
}

function upload(url: string, name: string, bytes: Uint8Array) {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  return fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
}

function seen(match: (request: FakeRequest) => boolean, fault: Fault): Promise<void> {
  return new Promise((resolveSeen) => {
    fixture.intercept = (request) => {
      if (!match(request)) return undefined;
      fixture.intercept = undefined;
      resolveSeen();
      return fault;
    };
  });
}

/** Record <=> file, nothing in AIProcessing, no temp file, no journal entry. */
async function expectConsistent(statuses: number[]): Promise<void> {
  const files = (await filesUnder(fixture.root)).filter((path) => path.startsWith("videos/") || path.startsWith("images/"));
  expect(files.filter((path) => path.endsWith(".partial") || path.endsWith(".json"))).toEqual([]);
  expect([...fixture.fake.records.values()].map((record) => String(record.path).slice(fixture.root.length + 1)).sort()).toEqual(files.sort());
  expect([...fixture.fake.records.values()].map((record) => record.mediaStatus)).toEqual(statuses);
}

const isPost = (r: FakeRequest) => r.method === "POST";
const isStatus = (status: number) => (r: FakeRequest) => r.method === "PUT" && r.body === JSON.stringify({ MediaStatus: status });
const within45s = { timeout: 45_000, interval: 100 };

describe("the Express example under faults and kill -9, restarted at once", () => {
  for (const fault of ["hang", "commit-hang"] as const) {
    it(`killed while its create ${fault === "hang" ? "was not yet applied" : "was applied but not answered"}: the record and the file end together`, async () => {
      const first = await startExample();
      const png = samplePng(40, 30, 3);
      const id = await computeMediaId(png);
      const posted = seen(isPost, fault);
      const answer = upload(first.url, "field.png", png).catch((error: unknown) => error);
      await posted;
      await first.kill();
      expect(await answer).toBeInstanceOf(Error);
      await startExample();
      await vi.waitFor(() => expectConsistent([1]), within45s);
      expect(fixture.fake.records.get(id)).toMatchObject({ userId: "alice", name: "field.png" });
    });
  }

  it("killed in the middle of a detection: the record goes to Error, not stuck in AIProcessing", async () => {
    const first = await startExample({ DETECTOR_DELAY_MS: "60000" });
    const started = seen(isStatus(2), "commit-hang");
    // The answer of AIProcessing is lost too: the detection is then not run, and the record must not stay.
    const answer = upload(first.url, "clip.mp4", sampleMp4(200_000, 5)).catch((error: unknown) => error);
    await started;
    await first.kill();
    await answer;
    await startExample();
    await vi.waitFor(() => expectConsistent([6]), within45s);
  });

  it("killed while detecting, after AIProcessing landed: Error within seconds of the restart", async () => {
    const first = await startExample({ DETECTOR_DELAY_MS: "60000" });
    const answer = upload(first.url, "clip.mp4", sampleMp4(200_000, 6)).catch((error: unknown) => error);
    await vi.waitFor(() => expect([...fixture.fake.records.values()].map((r) => r.mediaStatus)).toEqual([2]));
    await first.kill();
    await answer;
    await startExample();
    await vi.waitFor(() => expectConsistent([6]), within45s);
  });

  it("the annotations service down past the client's deadline at the end of a detection: the answer comes, AIProcessed lands later", async () => {
    const example = await startExample();
    let outage = true;
    fixture.intercept = (request) => (outage && isStatus(3)(request) ? { status: 503 } : undefined);
    const response = await upload(example.url, "a.png", samplePng(20, 20, 8));
    expect(response.status).toBe(200);
    expect(((await response.json()) as { detections: unknown[] }).detections).toEqual(expect.any(Array));
    outage = false;
    await vi.waitFor(() => expectConsistent([3]), within45s);
  });

  it("the annotations service gone once the detection started: 503 with the media ID, the detections and the pending status; AIProcessed lands later", async () => {
    const example = await startExample({ DETECTOR_DELAY_MS: "200" });
    const png = samplePng(24, 24, 11);
    let down = false;
    fixture.intercept = (request) => {
      if (down) return { status: 503 };
      // AIProcessing lands; from then on the service answers nothing but 503.
      if (isStatus(2)(request)) down = true;
      return undefined;
    };
    const response = await upload(example.url, "gone.png", png);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    const body = (await response.json()) as { error: { code: string; mediaId: string }; media: Record<string, unknown>; detections: unknown[] };
    const id = await computeMediaId(png);
    expect(body.error).toMatchObject({ code: "MEDIA_RECORD_PENDING", mediaId: id });
    expect(body.media).toMatchObject({ id, mediaStatus: 3, statusPending: true, name: "gone.png" });
    expect(body.detections.length).toBeGreaterThan(0);
    expect(fixture.fake.records.get(id)?.mediaStatus).toBe(2);
    down = false;
    await vi.waitFor(() => expectConsistent([3]), within45s);
  });

  it("starts serving while the annotations service is down, and settles what a crash left once it is back", async () => {
    const first = await startExample();
    const posted = seen(isPost, "hang");
    const answer = upload(first.url, "b.png", samplePng(22, 22, 9)).catch((error: unknown) => error);
    await posted;
    await first.kill();
    await answer;
    let down = true;
    fixture.intercept = () => (down ? { status: 503 } : undefined);
    const second = await startExample();
    expect(await (await fetch(`${second.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(fixture.fake.records.size).toBe(0);
    down = false;
    await vi.waitFor(() => expectConsistent([1]), within45s);
  });
});
