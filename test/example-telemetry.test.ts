// The example's telemetry (examples/express/telemetry.ts), through real processes and real HTTP:
// GET /metrics in Prometheus's text format after uploads, counted by route and status; the
// request spans sent over OTLP/HTTP to a receiver on loopback, the last ones by the graceful
// stop; OTEL_SDK_DISABLED=true turns both off and the uploads still work.
import { once } from "node:events";
import { watch } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { startChild } from "./helpers/child.ts";
import { exampleEnv } from "./helpers/example-env.ts";
import { useDevFixture } from "./helpers/fixture.ts";

const secret = "example-telemetry-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
const server = resolve(import.meta.dirname, "../examples/express/server.ts");

/** server.ts on a free port, with the fixture's folders and dev annotations server, and `env`; resolves once it listens. */
async function startExample(env: NodeJS.ProcessEnv = {}) {
  const example = startChild(server, null, exampleEnv({ annotationsUrl: fixture.annotations.url, directories: fixture.directories, secret }, env));
  const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
  return { example, url: url as string };
}

/** One multipart upload to /detect; its status. */
async function upload(url: string, name: string, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<number> {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}`, ...headers } });
  await response.arrayBuffer();
  return response.status;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Prometheus's text format (0.0.4), parsed strictly: every line is a HELP or TYPE line, another
 * comment, or a sample whose name, labels and value parse, of a family whose TYPE and HELP came
 * before it.
 */
function parseExposition(text: string) {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const escaped = '(?:[^"\\\\\\n]|\\\\[\\\\"n])*';
  const labelValue = `"(${escaped})"`;
  const sampleLine = new RegExp(`^(${name})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="${escaped}",?)*)\\})? (\\S+)(?: -?\\d+)?$`);
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const meta = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`).exec(line);
      if (meta?.[1] === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"], line).toContain(meta[3]);
        expect(types.has(meta[2] as string), `a second TYPE line: ${line}`).toBe(false);
        types.set(meta[2] as string, meta[3] as string);
      } else if (meta?.[1] === "HELP") helps.add(meta[2] as string);
      // Any other comment (the exporter's `# UNIT`) is a comment to Prometheus.
      continue;
    }
    const sample = sampleLine.exec(line);
    expect(sample, `not a sample line: ${line}`).not.toBeNull();
    const [, sampleName, labelText = "", rawValue] = sample as RegExpExecArray;
    const value = rawValue === "+Inf" ? Infinity : rawValue === "-Inf" ? -Infinity : rawValue === "NaN" ? Number.NaN : Number(rawValue);
    expect(Number.isNaN(value) && rawValue !== "NaN", `not a value: ${line}`).toBe(false);
    const labels = Object.fromEntries([...labelText.matchAll(new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)=${labelValue}`, "g"))].map((m) => [m[1], (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))]));
    // A histogram's samples are its family's name and _count, _sum or _bucket.
    const family = types.has(sampleName as string) ? (sampleName as string) : (sampleName as string).replace(/_(count|sum|bucket)$/, "");
    expect(types.get(family), `no TYPE line before ${line}`).toBeDefined();
    expect(helps.has(family), `no HELP line before ${line}`).toBe(true);
    samples.push({ name: sampleName as string, labels, value });
  }
  return { types, samples };
}

/** The value of the one sample named `name` whose labels include `labels`. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

/**
 * The library's upload counter (`media_intake.uploads`, issue 21 item 9) after the /metrics test's
 * three uploads to /detect: one created, one duplicate, one refused, all through the stream
 * intake.
 */
function expectLibraryUploads(exposition: ReturnType<typeof parseExposition>): void {
  expect(exposition.types.get("media_intake_uploads_total")).toBe("counter");
  const uploads = exposition.samples.filter((s) => s.name === "media_intake_uploads_total");
  expect(Object.fromEntries(uploads.map((s) => [s.labels.media_intake_outcome, s.value]))).toEqual({ created: 1, duplicate: 1, refused: 1 });
  for (const sample of uploads) expect(sample.labels.media_intake_intake).toBe("stream");
}

describe("GET /metrics", () => {
  it("after two uploads of one image and a refused one: the requests by route and status, in Prometheus's text format", async () => {
    const { url } = await startExample();
    const png = samplePng(24, 24, 5);
    expect(await upload(url, "photo.png", png)).toBe(200);
    // The same content again: a duplicate, answered 200 too.
    expect(await upload(url, "again.png", png)).toBe(200);
    expect(await upload(url, "notes.txt", new TextEncoder().encode("not an image, not a video"))).toBe(415);
    // An unknown path: counted, under no route.
    expect((await fetch(`${url}/media/0123456789abcdef/nothing`)).status).toBe(404);

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4\b/);
    const exposition = parseExposition(await response.text());
    const { samples, types } = exposition;
    // This exporter writes no unit suffix: the name is the instrument's, dots made underscores.
    expect(types.get("http_server_request_duration")).toBe("histogram");
    const count = (labels: Record<string, string>) => valueOf(samples, "http_server_request_duration_count", { http_request_method: "POST", http_route: "/detect", ...labels });
    expect(count({ http_response_status_code: "200" })).toBe(2);
    expect(count({ http_response_status_code: "415" })).toBe(1);
    const detect = samples.filter((s) => s.name === "http_server_request_duration_count" && s.labels.http_route === "/detect");
    expect(detect.map((s) => s.labels.http_response_status_code).sort()).toEqual(["200", "415"]);
    // Each histogram's +Inf bucket holds its count.
    expect(valueOf(samples, "http_server_request_duration_bucket", { http_route: "/detect", http_response_status_code: "200", le: "+Inf" })).toBe(2);
    // The route's pattern, never a path with an ID in it; the unknown path has no route.
    const routes = new Set(samples.filter((s) => s.name === "http_server_request_duration_count").map((s) => s.labels.http_route));
    expect(routes).toEqual(new Set(["/detect", undefined]));
    expect(valueOf(samples, "http_server_request_duration_count", { http_request_method: "GET", http_response_status_code: "404" })).toBe(1);
    expect(valueOf(samples, "target_info", {})).toBe(1);
    expect(samples.find((s) => s.name === "target_info")?.labels.service_name).toBe("media-intake-example");
    expectLibraryUploads(exposition);
  });

  it("a client gone mid-upload on /detect-multer, as on /detect: no status and error_type=\"aborted\", never a 500, and no error logged", async () => {
    const { url, example } = await startExample();
    for (const route of ["/detect", "/detect-multer"]) {
      // 32 MB declared, 1 MB sent: the store is writing it when the client goes.
      const boundary = "----gone";
      const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
      const socket = connect(Number(new URL(url).port), "127.0.0.1");
      socket.on("error", () => {});
      const writing = new Promise<void>((resolve) => {
        const watcher = watch(fixture.directories.videosDir, (_event, name) => name?.endsWith(".partial") && (watcher.close(), resolve()));
      });
      socket.write(`POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fixture.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 32000000\r\n\r\n`);
      socket.write(Buffer.concat([head, sampleMp4(1_000_000, 7)]));
      await writing;
      socket.destroy();
      await example.match(new RegExp(`"url":"${route}"\\}.*"msg":"request ended before its answer`));
      await example.match(new RegExp(`"url":"${route}"\\}.*"msg":"request aborted"`));
    }
    const { samples } = parseExposition(await (await fetch(`${url}/metrics`)).text());
    for (const route of ["/detect", "/detect-multer"]) {
      const counted = samples.filter((s) => s.name === "http_server_request_duration_count" && s.labels.http_route === route);
      expect(counted.map((s) => s.labels), route).toEqual([expect.objectContaining({ http_request_method: "POST", http_route: route, error_type: "aborted" })]);
      expect(counted[0]?.labels.http_response_status_code, route).toBeUndefined();
    }
    expect(example.lines().filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
  });

  it("OTEL_SDK_DISABLED=true: no /metrics (404), and uploads work", async () => {
    const { url, example } = await startExample({ OTEL_SDK_DISABLED: "true" });
    expect(await upload(url, "photo.png", samplePng(20, 20, 9))).toBe(200);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
    expect(example.lines().some((line) => line.includes('"msg":"telemetry off (OTEL_SDK_DISABLED=true): no /metrics, no traces"'))).toBe(true);
  });
});

interface ReceivedSpan {
  resource: Record<string, unknown>;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status: { code?: number };
}

/** OTLP's attribute list as an object: `[{ key, value: { stringValue } }]` → `{ key: value }`. */
function attributesOf(list: Array<{ key: string; value: Record<string, unknown> }> = []): Record<string, unknown> {
  return Object.fromEntries(list.map(({ key, value }) => [key, "intValue" in value ? Number(value.intValue) : Object.values(value)[0]]));
}

/** An OTLP/HTTP receiver on loopback: takes POST /v1/traces (JSON, gzip or not) and keeps the spans. */
async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const requests: Array<{ path: string | undefined; contentType: string | undefined }> = [];
  const waiters = new Set<() => void>();
  const receiver: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({ path: req.url, contentType: req.headers["content-type"] });
      const raw = Buffer.concat(chunks);
      const body = JSON.parse((req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString()) as {
        resourceSpans?: Array<{ resource?: { attributes?: [] }; scopeSpans?: Array<{ scope?: { name: string }; spans?: Array<Record<string, unknown> & { attributes?: [] }> }> }>;
      };
      for (const resourceSpans of body.resourceSpans ?? []) {
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              resource: attributesOf(resourceSpans.resource?.attributes),
              scope: scopeSpans.scope?.name ?? "",
              traceId: span.traceId as string,
              spanId: span.spanId as string,
              parentSpanId: (span.parentSpanId as string | undefined) || undefined,
              name: span.name as string,
              kind: span.kind as number,
              attributes: attributesOf(span.attributes),
              status: (span.status ?? {}) as { code?: number },
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
      for (const waiter of waiters) waiter();
    });
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
  return {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    spans,
    requests,
    /** The first span named `name`, received already or to come. */
    span: (name: string) =>
      new Promise<ReceivedSpan>((resolve) => {
        const check = () => {
          const found = spans.find((s) => s.name === name);
          if (!found) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      }),
    close: () => {
      receiver.closeAllConnections();
      return new Promise((resolve) => receiver.close(resolve));
    },
  };
}

const receivers: Array<{ close: () => Promise<unknown> }> = [];
afterEach(async () => {
  for (const receiver of receivers.splice(0)) await receiver.close();
});

/**
 * The library's spans under the request's (issue 21 item 9): the intake a child of `POST
 * /detect`, storing and recording children of the intake.
 */
function expectLibrarySpansUnder(spans: ReceivedSpan[], request: ReceivedSpan): void {
  const intake = spans.find((s) => s.name === "media_intake.intake");
  expect(intake).toMatchObject({ traceId: request.traceId, parentSpanId: request.spanId, scope: "media-intake" });
  for (const child of ["media_intake.store", "media_intake.record"]) expect(spans.find((s) => s.name === child), child).toMatchObject({ traceId: request.traceId, parentSpanId: intake?.spanId });
}

describe("traces over OTLP/HTTP", () => {
  it("an upload's SERVER span reaches the receiver, sent by the graceful stop: its name, attributes, parent and service.name", async () => {
    const receiver = await startOtlpReceiver();
    receivers.push(receiver);
    // Batches an hour apart: only the stop's flush can send the span.
    const { url, example } = await startExample({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "3600000", OTEL_SERVICE_NAME: "detections-under-test" });
    expect(example.lines().some((line) => line.includes(`"msg":"telemetry: metrics at /metrics; traces to ${receiver.url}/v1/traces"`))).toBe(true);
    // The caller's own trace: the request's span continues it.
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpanId = "00f067aa0ba902b7";
    expect(await upload(url, "photo.png", samplePng(22, 22, 4), { traceparent: `00-${traceId}-${callerSpanId}-01` })).toBe(200);
    expect(receiver.spans).toEqual([]);

    const exited = once(example.child, "exit");
    example.child.kill("SIGTERM");
    // The receiver answers once it holds the spans, and the stop waits for that answer.
    const request = await Promise.race([
      receiver.span("POST /detect"),
      exited.then((how) => Promise.reject(new Error(`the example exited (${String(how)}) without sending its span`))),
    ]);
    expect(await exited).toEqual([0, null]);

    expect(receiver.requests[0]).toEqual({ path: "/v1/traces", contentType: "application/json" });
    expect(request).toMatchObject({
      resource: { "service.name": "detections-under-test" },
      scope: "media-intake-example",
      traceId,
      parentSpanId: callerSpanId,
      // SPAN_KIND_SERVER
      kind: 2,
      attributes: { "http.request.method": "POST", "http.route": "/detect", "http.response.status_code": 200, "url.path": "/detect", "url.scheme": "http" },
    });
    // A 200 is no error.
    expect(request.status.code ?? 0).toBe(0);
    expectLibrarySpansUnder(receiver.spans, request);
  });
});

describe("OTLP endpoints an operator gets wrong", () => {
  it("OTEL_EXPORTER_OTLP_ENDPOINT ending in /v1/traces: a warning at start pointing to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; each failed export is one line naming the URL", async () => {
    // A collector that has no /v1/traces/v1/traces: 404, as a real one answers.
    const collector = createServer((req, res) => req.resume().on("end", () => res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found")));
    collector.listen(0, "127.0.0.1");
    await once(collector, "listening");
    receivers.push({ close: () => new Promise((resolve) => (collector.closeAllConnections(), collector.close(resolve))) });
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const { url, example } = await startExample({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: "50" });
    const warning = JSON.parse((await example.match(/^\{"level":40,.*"msg":"telemetry: OTEL_EXPORTER_OTLP_ENDPOINT/)).input as string) as { msg: string };
    expect(warning.msg).toBe(
      `telemetry: OTEL_EXPORTER_OTLP_ENDPOINT (${endpoint}) ends in /v1/traces, which is appended to it: spans go to ${endpoint}/v1/traces. Give the collector's base URL there, or the full URL in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.`,
    );
    expect(await upload(url, "photo.png", samplePng(18, 18, 6))).toBe(200);
    const failure = JSON.parse((await example.match(/^\{"level":50,.*"msg":"telemetry: /)).input as string) as Record<string, unknown>;
    expect(failure).toMatchObject({ traces: `${endpoint}/v1/traces`, msg: `telemetry: spans not sent to ${endpoint}/v1/traces (OTEL_EXPORTER_OTLP_ENDPOINT): Not Found (HTTP 404)` });
    expect(JSON.stringify(failure)).not.toMatch(/stack|\\n/);
  });
});
