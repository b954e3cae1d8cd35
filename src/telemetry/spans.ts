// The library's spans, on whatever tracer provider is registered with @opentelemetry/api when a
// span starts (an SDK registered after this module loaded is used). Without the API, a span is a
// plain call of its function; with the API and no SDK, the API's no-op span is started and nothing
// else is done: no context is made, no attribute built (callers get `undefined` for a span that
// does not record, and build attributes only for one that does).
import type { Span, Tracer, TracerProvider } from "@opentelemetry/api";
import packageJson from "../../package.json" with { type: "json" };
import { SCOPE } from "./names.ts";
import { otelApi } from "./peers.ts";

const api = otelApi.module;

/** The tracer, got again only when the global provider is another one (set, or disabled and set again). */
let tracerProvider: TracerProvider | undefined;
let tracer: Tracer | undefined;

function currentTracer(otel: NonNullable<typeof api>): Tracer {
  const provider = otel.trace.getTracerProvider();
  // Before an SDK is registered this is the API's proxy, whose tracer delegates once one is.
  if (provider !== tracerProvider || tracer === undefined) {
    tracerProvider = provider;
    tracer = provider.getTracer(SCOPE, packageJson.version);
  }
  return tracer;
}

/**
 * Runs `run` in a span named `name`, a child of the span active when it is called (`root`: of
 * none, for background work that no caller waits on). `run` gets the span while it records,
 * else `undefined`. A rejection ends the span with status ERROR, the error's name and message
 * recorded (an `exception` event), and is passed on as it is.
 */
export function inSpan<T>(name: string, run: (span: Span | undefined) => Promise<T>, options?: { readonly root?: boolean }): Promise<T> {
  if (api === undefined) return run(undefined);
  const parent = options?.root ? api.ROOT_CONTEXT : api.context.active();
  const span = currentTracer(api).startSpan(name, undefined, parent);
  const recording = span.isRecording();
  const body = async () => {
    try {
      return await run(recording ? span : undefined);
    } catch (error) {
      if (recording) recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  };
  // A span made active only when it is one of its own: a recording one, or one an SDK sampled out
  // (its children follow that decision). The API's no-op span is the parent's context, or none.
  const own = span.spanContext();
  if (recording || (own !== api.trace.getSpanContext(parent) && api.trace.isSpanContextValid(own))) return api.context.with(api.trace.setSpan(parent, span), body);
  return body();
}

/**
 * Marks a span failed: status ERROR with the error's message, and an `exception` event with its
 * name and message (not its stack). A thrown value that is not an Error is recorded by its type
 * only. The library's own messages never carry a token or a user ID (docs/observability.md).
 */
function recordFailure(span: Span, error: unknown): void {
  const type = error instanceof Error ? error.name : typeof error;
  const message = error instanceof Error ? error.message : "";
  span.setAttribute("error.type", type);
  span.addEvent("exception", { "exception.type": type, "exception.message": message });
  span.setStatus({ code: api?.SpanStatusCode.ERROR ?? 2, message });
}
