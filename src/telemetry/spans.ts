// The library's spans, on whatever tracer provider is registered with @opentelemetry/api when a
// span starts (an SDK registered after this module loaded is used). Without the API, a span is a
// plain call of its function; with the API and no SDK, the API's no-op span is started and nothing
// else is done: no context is made, no attribute built (callers get `undefined` for a span that
// does not record, and build attributes only for one that does).
import type { Span, Tracer, TracerProvider } from "@opentelemetry/api";
import packageJson from "../../package.json" with { type: "json" };
import { isMediaIntakeError } from "../errors/index.ts";
import { ATTR, SCOPE } from "./names.ts";
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
 * else `undefined`. A rejection ends the span with status ERROR, what the error is recorded (an
 * `exception` event; never its message), and is passed on as it is.
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
 * Marks a span failed by what the error is, never by what its message says: `error.type` (its
 * class, {@link typeOf}) and, for the library's own errors, their
 * stable `code` (`media_intake.error.code`), on the span and its `exception` event; the status
 * message is the code, else the type. A message is for logs: it names files, folders and whatever
 * a caller or a service put in it (a file name is the uploader's text), and would carry them into
 * every trace backend (docs/observability.md "What is never recorded").
 */
function recordFailure(span: Span, error: unknown): void {
  const type = typeOf(error);
  const code = isMediaIntakeError(error) ? error.code : undefined;
  const coded = code === undefined ? {} : { [ATTR.errorCode]: code };
  span.setAttributes({ "error.type": type, ...coded });
  span.addEvent("exception", { "exception.type": type, ...coded });
  span.setStatus({ code: api?.SpanStatusCode.ERROR ?? 2, message: code ?? type });
}

/**
 * An error's type: its name (`MediaWriteError`, a DOMException's `AbortError`), or the name of its
 * class when it kept Error's own (`class DetectorError extends Error {}`); for a thrown value that
 * is not an Error, its JavaScript type.
 */
function typeOf(error: unknown): string {
  if (!(error instanceof Error)) return typeof error;
  if (error.name !== "Error") return error.name;
  const constructorName = (error.constructor as { name?: unknown } | undefined)?.name;
  return typeof constructorName === "string" && constructorName !== "" ? constructorName : "Error";
}
