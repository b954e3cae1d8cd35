// BullMQ's own telemetry through the detection queue's `telemetry` option, on a real redis-server:
// a job traced from the web side's add to the worker's run, and the run's media_intake.track span
// under the job's, all in one trace recorded by an in-memory SDK.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { BullMQOtel } from "bullmq-otel";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { samplePng } from "../../examples/sample-media.ts";
import { createAnnotationsClient, intakeMedia } from "../../src/index.ts";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { createDetectionQueue, startDetectionWorker } from "../../src/queue/index.ts";
import { useDevFixture } from "../helpers/fixture.ts";
import { registerInMemorySdk } from "../helpers/otel.ts";
import { startRedisServer } from "../helpers/redis-server.ts";

const fixture = useDevFixture({ secret: "q".repeat(32) });
let sdk: ReturnType<typeof registerInMemorySdk>;
beforeAll(() => {
  sdk = registerInMemorySdk();
});
afterAll(() => sdk.shutdown());

describe("the detection queue with BullMQ's telemetry", () => {
  it("traces a job from its add to its run, the tracked run's span under the job's", async () => {
    const redis = await startRedisServer();
    const connection = { host: "127.0.0.1", port: Number(new URL(redis.url).port), maxRetriesPerRequest: null };
    const name = `detect-${randomBytes(3).toString("hex")}`;
    const client = createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.serviceToken, retry: false });
    const media = await intakeMedia(Readable.from([samplePng(16, 16, 3)]), { originalName: "q.png", token: fixture.token, client, directories: fixture.directories });
    const telemetry = new BullMQOtel({ tracerName: "media-intake-test" });
    const queue = createDetectionQueue<{ boxes: number }>({ connection, name, telemetry });
    const journal = createRedisJournal({ connection: redis.url, prefix: `${name}:journal`, heartbeatMs: 100 });
    const worker = startDetectionWorker(async () => ({ boxes: 1 }), { connection, client, journal, name, telemetry });
    onTestFinished(async () => {
      await worker.close(true);
      await queue.close();
      await journal.close();
    });
    sdk.spans.reset();
    const { jobId } = await sdk.tracer.startActiveSpan("web request", async (span) => {
      try {
        return await queue.enqueue(media);
      } finally {
        span.end();
      }
    });
    expect(await queue.result(jobId, { timeoutMs: 20_000 })).toEqual({ boxes: 1 });
    const run = await sdk.spans.waitFor((span) => span.name === "media_intake.track");
    const spans = sdk.spans.getFinishedSpans();
    const named = (spanName: string) => spans.find((span) => span.name === spanName);
    const [web, add, processed] = [named("web request"), spans.find((span) => span.name.startsWith(`add ${name}.`)), named(`process ${name}`)];
    // BullMQ's spans, by bullmq-otel's tracer: the add under the web request, the job's run under the add.
    expect(add?.instrumentationScope.name).toBe("media-intake-test");
    expect(add?.parentSpanContext?.spanId).toBe(web?.spanContext().spanId);
    expect(processed?.parentSpanContext?.spanId).toBe(add?.spanContext().spanId);
    expect(processed?.attributes).toMatchObject({ "bullmq.queue.name": name, "bullmq.queue.operation": "process" });
    // The library's own span, under the job's.
    expect(run.parentSpanContext?.spanId).toBe(processed?.spanContext().spanId);
    expect(run.instrumentationScope.name).toBe("media-intake");
    expect(run.attributes).toEqual({ "media_intake.media_id": media.id, "media_intake.status": "AIProcessed" });
    expect(new Set([web, add, processed, run].map((span) => span?.spanContext().traceId)).size).toBe(1);
  });
});
