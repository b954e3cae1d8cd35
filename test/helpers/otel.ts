// An OpenTelemetry SDK that records into memory, registered globally as a host registers its own:
// spans kept as they end (and awaitable), metrics collected on demand, contexts carried by
// AsyncLocalStorage, the W3C trace context propagated. Registered after media-intake has loaded, as a host that sets up its SDK late.
import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
// The SDK packages' own dependency (not one of ours): the W3C propagator every SDK setup registers.
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { DataPointType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

/** A metric reader that exports nowhere: the test collects. */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** The in-memory exporter, whose spans can be waited for as they end. */
export class WatchedSpanExporter extends InMemorySpanExporter {
  private waiters: Array<{ test: (span: ReadableSpan) => boolean; resolve: (span: ReadableSpan) => void }> = [];

  override export(spans: ReadableSpan[], resultCallback: Parameters<InMemorySpanExporter["export"]>[1]): void {
    super.export(spans, resultCallback);
    for (const span of spans) {
      for (const waiter of this.waiters.filter((w) => w.test(span))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(span);
      }
    }
  }

  /** The first ended span that matches, ended already or to come. */
  waitFor(test: (span: ReadableSpan) => boolean): Promise<ReadableSpan> {
    const found = this.getFinishedSpans().find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

/** One data point of a metric: a number (counter, gauge) or a histogram's count and sum. */
export interface MetricPoint {
  name: string;
  unit: string;
  attributes: Record<string, unknown>;
  value: number | { count: number; sum: number };
}

/** Registers the in-memory SDK globally; `resetMetrics` starts a fresh meter provider (counts from zero). */
export function registerInMemorySdk() {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // What carries a trace across processes (BullMQ's jobs through bullmq-otel).
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const spans = new WatchedSpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
  trace.setGlobalTracerProvider(tracerProvider);
  let reader = new CollectingReader();
  let meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    tracer: trace.getTracer("test"),
    /** A new meter provider in place of the last: metrics from now on only. */
    async resetMetrics(): Promise<void> {
      await meterProvider.shutdown();
      metrics.disable();
      reader = new CollectingReader();
      meterProvider = new MeterProvider({ readers: [reader] });
      metrics.setGlobalMeterProvider(meterProvider);
    },
    /** Every data point of every metric, now. */
    async collect(): Promise<MetricPoint[]> {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) =>
        scope.metrics.flatMap((metric) =>
          (metric.dataPoints as Array<{ attributes: Record<string, unknown>; value: unknown }>).map((point) => ({
            name: metric.descriptor.name,
            unit: metric.descriptor.unit,
            attributes: { ...point.attributes },
            value:
              metric.dataPointType === DataPointType.HISTOGRAM
                ? { count: (point.value as { count: number }).count, sum: (point.value as { sum: number }).sum }
                : (point.value as number),
          })),
        ),
      );
    },
    async shutdown(): Promise<void> {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      trace.disable();
      metrics.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** The value of `name`'s point whose attributes are exactly `attributes` (`undefined` when there is none). */
export function pointOf(points: MetricPoint[], name: string, attributes: Record<string, unknown>): MetricPoint["value"] | undefined {
  const wanted = JSON.stringify(Object.entries(attributes).sort());
  return points.find((point) => point.name === name && JSON.stringify(Object.entries(point.attributes).sort()) === wanted)?.value;
}
