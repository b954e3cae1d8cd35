// The library's OpenTelemetry spans and metrics, as a host sees them through an SDK of its own
// (recording into memory here), registered after media-intake loaded: real intakes of real files
// in temp directories, against the dev annotations server on loopback.
import { Readable } from "node:stream";
import { SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { Upload } from "tus-js-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  AuthTokenError,
  createAnnotationsClient,
  intakeMedia,
  MediaContentMismatchError,
  MediaRecordPendingError,
  trackMediaProcessing,
  UnsupportedMediaTypeError,
} from "../src/index.ts";
import { createDetectionQueue, startDetectionWorker } from "../src/queue/index.ts";
import { createTusIntake } from "../src/tus/index.ts";
import { signToken, useDevFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { pointOf, registerInMemorySdk } from "./helpers/otel.ts";

const secret = "t".repeat(32);
// A user ID that would be easy to find in exported data, were it ever recorded.
const fixture = useDevFixture({ secret, sub: "alice-7f3e9c" });
/** The client a host runs: the service's own token. */
const client = (baseUrl = fixture.annotations.url) => createAnnotationsClient({ baseUrl, token: fixture.serviceToken, retry: false });
const intake = (bytes: Buffer, originalName: string, token: string | null = fixture.token) =>
  intakeMedia(Readable.from([bytes]), { originalName, token, client: client(), directories: fixture.directories });

// The library loaded before this (the imports above); the SDK comes now, as a host that sets it up late.
let sdk: ReturnType<typeof registerInMemorySdk>;
beforeAll(async () => {
  // An intake before any SDK is registered: the API's no-ops, nothing to see, nothing that breaks.
  // (Its own temp directories: the fixture's are made per test.)
  const before = await intakeMedia(samplePng(8, 8, 99), { originalName: "early.png", token: null, client: createAnnotationsClient({ baseUrl: "http://127.0.0.1:9" }), directories: { videosDir: "/nonexistent/v", imagesDir: "/nonexistent/i" } }).catch((error: unknown) => error);
  expect(before).toBeInstanceOf(AuthTokenError);
  sdk = registerInMemorySdk();
});
afterAll(() => sdk.shutdown());
beforeEach(async () => {
  sdk.spans.reset();
  await sdk.resetMetrics();
});

const ended = (name: string) => sdk.spans.getFinishedSpans().filter((span) => span.name === name);
const only = (name: string): ReadableSpan => {
  const found = ended(name);
  expect(found.map((span) => span.name)).toEqual([name]);
  return found[0] as ReadableSpan;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan) => span.spanContext().spanId;

describe("spans", () => {
  it("an intake is a span with store and record under it, under the span active when it was called", async () => {
    const png = samplePng(40, 30, 1);
    const media = await sdk.tracer.startActiveSpan("host request", async (outer) => {
      try {
        return await intake(png, "a.png");
      } finally {
        outer.end();
      }
    });
    const [outer, root, store, record] = [only("host request"), only("media_intake.intake"), only("media_intake.store"), only("media_intake.record")];
    expect(parentOf(root)).toBe(idOf(outer));
    expect(parentOf(store)).toBe(idOf(root));
    expect(parentOf(record)).toBe(idOf(root));
    expect(new Set([outer, root, store, record].map((span) => span.spanContext().traceId)).size).toBe(1);
    expect(root.attributes).toEqual({
      "media_intake.media_id": media.id,
      "media_intake.media_kind": "Image",
      "media_intake.size": png.length,
      "media_intake.outcome": "created",
      "media_intake.intake": "stream",
    });
    expect(store.attributes).toEqual({ "media_intake.media_id": media.id, "media_intake.media_kind": "Image", "media_intake.size": png.length });
    expect(record.attributes).toEqual({ "media_intake.media_id": media.id, "media_intake.record.created": true });
    expect([root, store, record].map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET, SpanStatusCode.UNSET]);

    // The same content again: the record is joined.
    sdk.spans.reset();
    await intake(png, "again.png");
    expect(only("media_intake.intake").attributes["media_intake.outcome"]).toBe("duplicate");
    expect(only("media_intake.record").attributes["media_intake.record.created"]).toBe(false);
  });

  it("a failing intake ends its span in ERROR, with the error's type and code, not its message", async () => {
    // PNG bytes named .mp4: refused by the store once it has read the first bytes.
    const error = await intake(samplePng(), "clip.mp4").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaContentMismatchError);
    const [root, store] = [only("media_intake.intake"), only("media_intake.store")];
    expect(ended("media_intake.record")).toEqual([]);
    expect(parentOf(store)).toBe(idOf(root));
    for (const span of [root, store]) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "MEDIA_CONTENT_MISMATCH" });
      expect(span.events.map((event) => [event.name, event.attributes])).toEqual([
        ["exception", { "exception.type": "MediaContentMismatchError", "media_intake.error.code": "MEDIA_CONTENT_MISMATCH" }],
      ]);
      expect(span.attributes).toMatchObject({ "error.type": "MediaContentMismatchError", "media_intake.error.code": "MEDIA_CONTENT_MISMATCH" });
    }
    expect(root.attributes["media_intake.outcome"]).toBe("refused");
  });

  it("a tracked run is a span with an event per status change: New -> AIProcessing -> AIProcessed, and an Error run", async () => {
    const media = await intake(sampleMp4(5_000, 2), "clip.mp4");
    const detect = trackMediaProcessing(async () => ({ boxes: 2 }), { client: client(), directories: fixture.directories });
    const fail = trackMediaProcessing(
      async () => {
        throw new RangeError("the detector gave up");
      },
      { client: client(), directories: fixture.directories },
    );
    sdk.spans.reset();
    await sdk.tracer.startActiveSpan("job", async (job) => {
      await detect(media);
      job.end();
    });
    const run = only("media_intake.track");
    expect(parentOf(run)).toBe(idOf(only("job")));
    expect(run.attributes).toEqual({ "media_intake.media_id": media.id, "media_intake.status": "AIProcessed" });
    expect(run.status.code).toBe(SpanStatusCode.UNSET);
    expect(run.events.map((event) => [event.name, event.attributes])).toEqual([
      ["media_intake.status_change", { "media_intake.status": "AIProcessing", "media_intake.result": "applied", "media_intake.status.previous": "New" }],
      ["media_intake.status_change", { "media_intake.status": "AIProcessed", "media_intake.result": "applied", "media_intake.status.previous": "AIProcessing" }],
    ]);

    sdk.spans.reset();
    await expect(fail(media.id)).rejects.toThrow("the detector gave up");
    const failed = only("media_intake.track");
    // Not one of the library's errors: its type, never its message (a detector's may name the file).
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: "RangeError" });
    expect(failed.attributes).toEqual({ "media_intake.media_id": media.id, "media_intake.status": "Error", "error.type": "RangeError" });
    expect(failed.events.map((event) => [event.name, event.attributes])).toEqual([
      // Called with the ID only: the status it left is not known to the run.
      ["media_intake.status_change", { "media_intake.status": "AIProcessing", "media_intake.result": "applied" }],
      ["media_intake.status_change", { "media_intake.status": "Error", "media_intake.result": "applied", "media_intake.status.previous": "AIProcessing" }],
      ["exception", { "exception.type": "RangeError" }],
    ]);
  });

  it("a tus upload's finish is a span, with the intake under it", async () => {
    const tus = createTusIntake({ directories: fixture.directories, client: client(), auth: { verify: { secret } }, sweepIntervalMs: 0 });
    const server = await startServer((req, res) => void tus.handle(req, res));
    try {
      const bytes = sampleMp4(300_000, 3);
      const mediaId = await new Promise<string | null>((resolve, reject) => {
        const upload = new Upload(bytes, {
          endpoint: `${server.url}/files`,
          chunkSize: 100_000,
          retryDelays: [],
          metadata: { filename: "long.mp4" },
          headers: { authorization: `Bearer ${fixture.token}` },
          onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader("Media-Id") ?? null),
          onError: reject,
        });
        upload.start();
      });
      const finish = only("media_intake.tus.finish");
      const root = only("media_intake.intake");
      expect(finish.attributes).toEqual({ "media_intake.media_id": mediaId, "media_intake.size": bytes.length });
      expect(parentOf(root)).toBe(idOf(finish));
      expect(root.attributes).toMatchObject({ "media_intake.media_id": mediaId, "media_intake.media_kind": "Video", "media_intake.intake": "tus", "media_intake.outcome": "created" });
      expect(parentOf(only("media_intake.store"))).toBe(idOf(root));
      const points = await sdk.collect();
      expect(pointOf(points, "media_intake.uploads", { "media_intake.outcome": "created", "media_intake.intake": "tus" })).toBe(1);
    } finally {
      await server.close();
      await tus.close();
    }
  });

  it("the background settling after an outage is a span of its own per pass, and the journal's pending entries a gauge", async () => {
    // The annotations service behind a door of ours: 503 to everything while the outage lasts.
    let outage = true;
    const door = await startServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", async () => {
        if (outage) return void res.writeHead(503).end();
        const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
        const answer = await fetch(`${fixture.annotations.url}${req.url}`, { method: req.method, headers: { authorization: req.headers.authorization ?? "", "content-type": "application/json" }, ...(body ? { body } : {}) });
        res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "text/plain" }).end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    try {
      const png = samplePng(20, 20, 5);
      const pending = await intakeMedia(Readable.from([png]), { originalName: "p.png", token: fixture.token, client: client(door.url), directories: fixture.directories }).catch((e: unknown) => e);
      expect(pending).toBeInstanceOf(MediaRecordPendingError);
      expect(only("media_intake.intake").attributes["media_intake.outcome"]).toBe("pending");
      // The first pass runs at once, in the outage: the entry is kept for the next one.
      const first = await sdk.spans.waitFor((span) => span.name === "media_intake.settle");
      expect(first.parentSpanContext).toBeUndefined();
      expect(first.attributes).toEqual({ "media_intake.settle.settled": 0, "media_intake.settle.deferred": 0, "media_intake.settle.retried": 1, "media_intake.settle.remaining": 1 });
      expect(pointOf(await sdk.collect(), "media_intake.journal.pending", {})).toBe(1);
      outage = false;
      const settled = await sdk.spans.waitFor((span) => span.name === "media_intake.settle" && span.attributes["media_intake.settle.settled"] === 1);
      expect(settled.attributes).toEqual({ "media_intake.settle.settled": 1, "media_intake.settle.deferred": 0, "media_intake.settle.retried": 0, "media_intake.settle.remaining": 0 });
      expect(settled.parentSpanContext).toBeUndefined();
      const points = await sdk.collect();
      expect(pointOf(points, "media_intake.journal.pending", {})).toBe(0);
      expect(pointOf(points, "media_intake.uploads", { "media_intake.outcome": "pending", "media_intake.intake": "stream" })).toBe(1);
      expect(pointOf(points, "media_intake.settles", { "media_intake.result": "retried" })).toBe(1);
      expect(pointOf(points, "media_intake.settles", { "media_intake.result": "settled" })).toBe(1);
      expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "New", "media_intake.result": "pending" })).toBe(1);
      expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "New", "media_intake.result": "applied" })).toBe(1);
    } finally {
      await door.close();
    }
  });
});

describe("metrics", () => {
  it("count uploads by outcome and entry point, with their sizes and durations, and the status changes and runs", async () => {
    const [a, b, mp4] = [samplePng(30, 30, 11), samplePng(31, 30, 12), sampleMp4(20_000, 13)];
    for (const [bytes, name] of [[a, "a.png"], [b, "b.png"], [mp4, "c.mp4"], [a, "a-again.png"]] as const) await intake(bytes, name);
    await expect(intake(a, "a.txt")).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    await expect(intake(b, "b.png", null)).rejects.toBeInstanceOf(AuthTokenError);
    // A token the annotations service refuses (another secret): refused for good, the file removed.
    await expect(intake(samplePng(9, 9, 14), "d.png", await signToken("mallory", "x".repeat(32), "5m"))).rejects.toMatchObject({ status: 401 });
    const detect = trackMediaProcessing(async () => "done", { client: client(), directories: fixture.directories });
    await detect(await intake(samplePng(10, 10, 15), "e.png"));

    const points = await sdk.collect();
    const stream = (outcome: string) => ({ "media_intake.outcome": outcome, "media_intake.intake": "stream" });
    expect(pointOf(points, "media_intake.uploads", stream("created"))).toBe(4);
    expect(pointOf(points, "media_intake.uploads", stream("duplicate"))).toBe(1);
    expect(pointOf(points, "media_intake.uploads", stream("refused"))).toBe(3);
    expect(points.filter((point) => point.name === "media_intake.uploads").map((point) => point.attributes["media_intake.outcome"]).sort()).toEqual(["created", "duplicate", "refused"]);
    // Sizes of what was stored: the five kept and the one whose record was refused.
    const stored = [a, b, mp4, a, samplePng(9, 9, 14), samplePng(10, 10, 15)];
    expect(pointOf(points, "media_intake.upload.size", { "media_intake.intake": "stream" })).toEqual({ count: 6, sum: stored.reduce((sum, bytes) => sum + bytes.length, 0) });
    const durations = pointOf(points, "media_intake.upload.duration", stream("refused")) as { count: number; sum: number };
    expect(durations.count).toBe(3);
    expect(durations.sum).toBeGreaterThan(0);
    expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "New", "media_intake.result": "applied" })).toBe(4);
    expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "New", "media_intake.result": "failed" })).toBe(1);
    expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "AIProcessing", "media_intake.result": "applied" })).toBe(1);
    expect(pointOf(points, "media_intake.status_changes", { "media_intake.status": "AIProcessed", "media_intake.result": "applied" })).toBe(1);
    expect((pointOf(points, "media_intake.processing.duration", { "media_intake.status": "AIProcessed" }) as { count: number }).count).toBe(1);
    const units = Object.fromEntries(points.map((point) => [point.name, point.unit]));
    expect(units).toMatchObject({
      "media_intake.uploads": "{upload}",
      "media_intake.upload.size": "By",
      "media_intake.upload.duration": "s",
      "media_intake.status_changes": "{change}",
      "media_intake.processing.duration": "s",
    });
  });
});

describe("what is never recorded", () => {
  it("no token, JWT part or user ID in any span name, attribute, event or status, nor in any metric", async () => {
    const wrongSecret = await signToken("alice-7f3e9c", "w".repeat(32), "5m");
    const expired = await signToken("alice-7f3e9c", secret, Math.floor(Date.now() / 1000) - 60);
    const media = await intake(samplePng(12, 12, 21), "mine.png");
    await intake(samplePng(12, 12, 21), "mine-again.png");
    await expect(intake(samplePng(12, 12, 22), "x.png", wrongSecret)).rejects.toMatchObject({ status: 401 });
    await expect(intake(samplePng(12, 12, 23), "y.png", expired)).rejects.toBeInstanceOf(AuthTokenError);
    const detect = trackMediaProcessing(async () => 1, { client: client(), directories: fixture.directories, token: fixture.token });
    await detect(media);
    const spans = sdk.spans.getFinishedSpans();
    expect(spans.length).toBeGreaterThan(8);
    const exported = JSON.stringify({
      spans: spans.map((span) => ({ name: span.name, attributes: span.attributes, events: span.events, status: span.status, links: span.links })),
      metrics: await sdk.collect(),
    });
    // The check can fail: the media ID, which is recorded, is found.
    expect(exported).toContain(media.id);
    for (const token of [fixture.token, fixture.serviceToken, wrongSecret, expired]) {
      for (const part of [token, ...token.split(".")]) expect(exported).not.toContain(part);
    }
    expect(exported).not.toContain("alice-7f3e9c");
    expect(exported).not.toContain(fixture.root);
  });
});

describe("the detection queue's telemetry option", () => {
  it("is checked like the other options: BullMQ telemetry or nothing", () => {
    const connection = { host: "127.0.0.1", port: 9 };
    expect(() => createDetectionQueue({ connection, telemetry: { tracer: {} } as never })).toThrow(
      "createDetectionQueue: expected `telemetry` to be BullMQ telemetry (a tracer and a context manager, such as new BullMQOtel() of bullmq-otel), got an object.",
    );
    expect(() => createDetectionQueue({ connection, telemetry: "bullmq" as never })).toThrow("expected `telemetry` to be BullMQ telemetry");
    expect(() => startDetectionWorker(() => 1, { connection, client: client(), journal: {} as never, telemetry: { tracer: { startSpan() {} } } as never })).toThrow(
      "startDetectionWorker: expected `telemetry` to be BullMQ telemetry (a tracer and a context manager, such as new BullMQOtel() of bullmq-otel), got an object.",
    );
  });
});
