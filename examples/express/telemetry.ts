// OpenTelemetry for the example's processes, from OpenTelemetry's own variables (config.ts):
// - metrics, unless OTEL_SDK_DISABLED=true: a MeterProvider whose reader is the Prometheus
//   exporter, served at GET /metrics by the web process (Prometheus's text format, no server of
//   its own); the library's metrics (media_intake.*) and `http.server.request.duration` of each
//   request, by route;
// - traces, when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: sent
//   over OTLP/HTTP (JSON) in batches; a SERVER span per request, active while the request is
//   handled, so that the library's spans (media_intake.intake, …) are its children.
// Both are registered with @opentelemetry/api, where the library finds them. The web process
// registers them before the library is loaded (instrumentation.ts); the stop flushes them.
import { format } from "node:util";
import { type Attributes, type Context, context, DiagLogLevel, diag, type Histogram, metrics, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { setGlobalErrorHandler, W3CTraceContextPropagator } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, resourceAttributesEnvDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { BullMQOtel } from "bullmq-otel";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { type TelemetryConfig, withoutPassword } from "./config.ts";

/** The scope of the example's own instruments. */
const SCOPE = "media-intake-example";
/** How long the stop waits for the last spans to be sent. */
const FLUSH_TIMEOUT_MS = 5_000;
/** Request durations, in seconds: the semantic conventions' buckets, then longer ones for uploads that take minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 1800];
/** The methods the semantic conventions name; any other is `_OTHER` (an attribute of few values). */
const knownMethods = new Set(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]);

export interface StartTelemetryOptions {
  /** `service.name` when OTEL_SERVICE_NAME is not set. */
  serviceName: string;
  /** Metrics (for /metrics); the worker serves none. */
  metrics: boolean;
}

export interface Telemetry {
  /**
   * `app` measured and traced, with GET /metrics in front of it; `app` itself when telemetry is
   * off. `app` is mounted at the root: its routes are the `http.route` of its requests.
   */
  instrument(app: express.Express): express.Express;
  /** `{ telemetry }` for createDetectionQueue and startDetectionWorker, or nothing (BullMQ's own spans through bullmq-otel, when traces are on: a job's enqueue and its run, the worker's joined to the web request's trace). */
  queueOptions(): { telemetry?: BullMQOtel };
  /** Logs what is on, and the SDK's own warnings and errors (a collector out of reach) to `logger`. */
  logTo(logger: Logger): void;
  /** Sends the spans not sent yet (within 5 s) and shuts the providers down; for the stop. */
  shutdown(): Promise<void>;
}

/**
 * The `http.route` of a request once answered: the pattern of the route that took it
 * (`/media/:mediaId`; the first of a route's patterns: `/files` for every tus request), or
 * `undefined` when no route did (an unknown path), never the path itself.
 */
export function routeOf(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  const pattern = Array.isArray(path) ? path[0] : path;
  return typeof pattern === "string" ? pattern : undefined;
}

/** An exporter's failure in one line: its message (its first line), and an HTTP status it carries. */
function failureLine(error: unknown): string {
  const { message, code } = (error ?? {}) as { message?: unknown; code?: unknown };
  const text = typeof error === "string" ? error : typeof message === "string" && message !== "" ? message : String(error);
  return `${text.split("\n")[0]}${typeof code === "number" ? ` (HTTP ${code})` : ""}`;
}

/** Starts the SDK and registers it globally; once per process, before the app is built. */
export function startTelemetry(config: TelemetryConfig, options: StartTelemetryOptions): Telemetry {
  let logger: Logger | undefined;
  if (config.disabled) {
    return {
      instrument: (app) => app,
      queueOptions: () => ({}),
      logTo: (to) => to.info("telemetry off (OTEL_SDK_DISABLED=true): no /metrics, no traces"),
      shutdown: async () => {},
    };
  }
  // The name by OTEL_SERVICE_NAME, else by OTEL_RESOURCE_ATTRIBUTES, else the process's own.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": options.serviceName }))
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector] }))
    .merge(config.serviceName ? resourceFromAttributes({ "service.name": config.serviceName }) : null);

  let exporter: PrometheusExporter | undefined;
  let meterProvider: MeterProvider | undefined;
  if (options.metrics) {
    exporter = new PrometheusExporter({ preventServerStart: true });
    meterProvider = new MeterProvider({ resource, readers: [exporter] });
    metrics.setGlobalMeterProvider(meterProvider);
  }

  let tracerProvider: TracerProvider | undefined;
  let tracer: Tracer | undefined;
  if (config.tracesUrl) {
    // The exporter reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, timeout).
    tracerProvider = new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), scheduledDelayMillis: config.scheduleDelayMs })] });
    trace.setGlobalTracerProvider(tracerProvider);
    // Spans nest across awaits and callbacks; a caller's `traceparent` (and a job's) is followed.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    tracer = trace.getTracer(SCOPE);
  }
  const duration = meterProvider?.getMeter(SCOPE).createHistogram("http.server.request.duration", {
    unit: "s",
    description: "Duration of HTTP server requests, until the answer is sent.",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const bullmq = tracer ? new BullMQOtel({ tracerName: SCOPE }) : undefined;

  return {
    instrument(app) {
      const outer = express();
      outer.disable("x-powered-by");
      outer.use(requestTelemetry(tracer, duration));
      // Unauthenticated, as /healthz: exposed to the scraper only (docs/express-example.md).
      if (exporter) {
        const prometheus = exporter;
        outer.get("/metrics", (req, res) => {
          prometheus.getMetricsRequestHandler(req, res);
          // The handler answers once collected; the version of the text format is said.
          res.setHeader("content-type", "text/plain; version=0.0.4; charset=utf-8");
        });
      }
      outer.use(app);
      return outer;
    },
    queueOptions: () => (bullmq ? { telemetry: bullmq } : {}),
    logTo(to) {
      logger = to;
      // One line each, an error by its message (an exporter's failure is no stack to read).
      const line = (message: string, args: unknown[]) => `telemetry: ${format(message, ...args.map((a) => (a instanceof Error ? a.message : a)))}`;
      diag.setLogger(
        {
          error: (message, ...args) => to.error(line(message, args)),
          warn: (message, ...args) => to.warn(line(message, args)),
          info: () => {},
          debug: () => {},
          verbose: () => {},
        },
        DiagLogLevel.WARN,
      );
      // A batch of spans not sent (the collector out of reach, a wrong path): one line naming where
      // they went and the variable that says so, instead of the SDK's serialized stack.
      const tracesUrl = config.tracesUrl && withoutPassword(config.tracesUrl);
      setGlobalErrorHandler((error) =>
        to.error({ traces: tracesUrl }, tracesUrl ? `telemetry: spans not sent to ${tracesUrl} (${config.tracesVariable}): ${failureLine(error)}` : `telemetry: ${failureLine(error)}`),
      );
      for (const warning of config.warnings) to.warn(`telemetry: ${warning}`);
      to.info({ metrics: exporter ? "/metrics" : false, traces: tracesUrl ?? false }, `telemetry: ${exporter ? "metrics at /metrics" : "no metrics"}; ${tracesUrl ? `traces to ${tracesUrl}` : "no traces (OTEL_EXPORTER_OTLP_ENDPOINT is not set)"}`);
    },
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      const shutdowns = Promise.all([tracerProvider?.shutdown(), meterProvider?.shutdown()]).then(
        () => true,
        (error: unknown) => {
          logger?.warn({ err: error }, "telemetry: shutting down failed");
          return true;
        },
      );
      const ranOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), FLUSH_TIMEOUT_MS)));
      const done = await Promise.race([shutdowns, ranOut]);
      clearTimeout(timer);
      if (!done) logger?.warn({ traces: config.tracesUrl && withoutPassword(config.tracesUrl) }, `telemetry: the last spans were not sent within ${FLUSH_TIMEOUT_MS} ms`);
    },
  };
}

/**
 * Per request: `http.server.request.duration` by method, route and status, and with traces a
 * SERVER span (`POST /detect`), a child of the caller's `traceparent` if any, active for the
 * request's handling and for the events of its request and response streams (a form's file
 * arrives in a `data` event: its intake's span is the request's child too).
 */
function requestTelemetry(tracer: Tracer | undefined, duration: Histogram | undefined) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const method = knownMethods.has(req.method) ? req.method : "_OTHER";
    let span: Span | undefined;
    let active: Context | undefined;
    if (tracer) {
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      const attributes: Attributes = { "http.request.method": method, "url.path": req.path, "url.scheme": req.protocol };
      if (method === "_OTHER") attributes["http.request.method_original"] = req.method;
      if (req.headers["user-agent"]) attributes["user_agent.original"] = req.headers["user-agent"];
      span = tracer.startSpan(method === "_OTHER" ? "HTTP" : method, { kind: SpanKind.SERVER, attributes }, parent);
      active = trace.setSpan(parent, span);
      context.bind(active, req);
      context.bind(active, res);
    }
    res.once("close", () => {
      const route = routeOf(req);
      // No status when the client left before the answer was sent.
      const status = res.headersSent ? res.statusCode : undefined;
      const errorType = !res.writableFinished ? "aborted" : status !== undefined && status >= 500 ? String(status) : undefined;
      const attributes: Attributes = { "http.request.method": method };
      if (route !== undefined) attributes["http.route"] = route;
      if (status !== undefined) attributes["http.response.status_code"] = status;
      if (errorType !== undefined) attributes["error.type"] = errorType;
      duration?.record((performance.now() - started) / 1000, attributes);
      if (!span) return;
      span.setAttributes(attributes);
      if (route !== undefined) span.updateName(`${method === "_OTHER" ? "HTTP" : method} ${route}`);
      if (errorType !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    if (active) context.with(active, next);
    else next();
  };
}
