// One side of bench:telemetry, in a process of its own: `absent` (started with the hook that hides
// @opentelemetry/api), `api` (the API, no SDK), or `sdk` (an SDK recording spans and metrics into
// memory). Says READY, then runs a round of intakes per `round` line on stdin, printing uploads/s.
import { createInterface } from "node:readline";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { samplePng } from "../examples/sample-media.ts";
import { createAnnotationsClient, intakeMedia } from "../src/index.ts";

const [mode, annotationsUrl, uploadsText, concurrencyText] = process.argv.slice(2) as [string, string, string, string];
const UPLOADS = Number(uploadsText);
const CONCURRENCY = Number(concurrencyText);
const TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl";

const api = await import("@opentelemetry/api").catch(() => undefined);
if ((mode === "absent") !== (api === undefined)) throw new Error(`bench:telemetry ${mode}: @opentelemetry/api is ${api ? "there" : "missing"}`);
let sdk: { spans(): number; points(): Promise<number> } | undefined;
if (mode === "sdk" && api) {
  const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks");
  const { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } = await import("@opentelemetry/sdk-trace");
  const { MeterProvider, MetricReader } = await import("@opentelemetry/sdk-metrics");
  class Reader extends MetricReader {
    protected override async onShutdown(): Promise<void> {}
    protected override async onForceFlush(): Promise<void> {}
  }
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new InMemorySpanExporter();
  api.trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
  const reader = new Reader();
  api.metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  sdk = {
    // Spans recorded since the last call (the exporter emptied: memory stays flat across rounds).
    spans() {
      const count = exporter.getFinishedSpans().length;
      exporter.reset();
      return count;
    },
    async points() {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.reduce((sum, scope) => sum + scope.metrics.length, 0);
    },
  };
}

const client = createAnnotationsClient({ baseUrl: annotationsUrl, token: "service-token" });
let seed = 0;
async function round(): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), "bench-telemetry-"));
  const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
  // Unique small PNGs (~2 KB each), made before the clock starts.
  const png = samplePng(24, 24, 1);
  const files = Array.from({ length: UPLOADS }, (_, i) => Buffer.concat([png, Buffer.from(`${mode}-${seed}-${i}`)]));
  seed++;
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < UPLOADS) {
        const i = next++;
        await intakeMedia(files[i] as Buffer, { originalName: `img-${i}.png`, token: TOKEN, client, directories });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await rm(root, { recursive: true, force: true });
  return UPLOADS / seconds;
}

console.log("READY");
for await (const line of createInterface({ input: process.stdin })) {
  if (line !== "round") break;
  const rate = await round();
  // What the SDK side recorded, to show it did: three spans per intake, and the library's metrics.
  const recorded = sdk ? { spans: sdk.spans(), metrics: await sdk.points() } : {};
  console.log(JSON.stringify({ rate, ...recorded }));
}
process.exit(0);
