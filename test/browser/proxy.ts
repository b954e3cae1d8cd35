// A proxy of ours in front of the example, between it and the browser: it counts the bytes of
// every request body it forwards (what the page really sent), remembers each request and its
// answer, and can hold one request's body after so many bytes (the upload stalls mid-way, for
// as long as the test wants: a reload, the network dropped) with no timer anywhere.
import { createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { Transform } from "node:stream";

/** A request the proxy forwarded: its method, path and headers, its body's bytes forwarded, and its answer. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The bytes of its body forwarded to the example so far. */
  bodyBytes: number;
  status?: number;
  responseHeaders?: IncomingHttpHeaders;
}

/** A request held mid-body: `drop()` cuts its connection both ways (the link died), as a reload does. */
export interface HeldRequest {
  request: ProxiedRequest;
  drop(): void;
}

export interface CountingProxy {
  url: string;
  /** Every request so far, in the order they came. */
  requests: ProxiedRequest[];
  /** The body bytes forwarded for the requests from index `from` on. */
  bytesFrom(from: number): number;
  /** Answers the next requests `matches` takes itself, one fault each in turn: "drop" cuts the connection (no answer). */
  failNext(matches: (request: ProxiedRequest) => boolean, faults: Array<"drop" | { status: number; headers?: Record<string, string>; body?: string }>): void;
  /** Holds the next request `matches` takes once `afterBytes` of its body went through; resolves then. */
  holdNext(matches: (request: ProxiedRequest) => boolean, afterBytes: number): Promise<HeldRequest>;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const { hostname, port } = new URL(target);
  const requests: ProxiedRequest[] = [];
  let failing: { matches: (request: ProxiedRequest) => boolean; faults: Array<"drop" | { status: number; headers?: Record<string, string>; body?: string }> } | undefined;
  let hold: { matches: (request: ProxiedRequest) => boolean; afterBytes: number; held: (held: HeldRequest) => void } | undefined;

  const server = createServer((req, res) => {
    const record: ProxiedRequest = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, bodyBytes: 0 };
    requests.push(record);
    if (failing?.matches(record) && failing.faults.length > 0) {
      const fault = failing.faults.shift();
      if (fault === "drop" || fault === undefined) return void req.socket.destroy();
      record.status = fault.status;
      return void res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers }).end(fault.body ?? "{}");
    }
    const upstream = request({ hostname, port, method: record.method, path: record.path, headers: req.headers }, (answer) => {
      record.status = answer.statusCode;
      record.responseHeaders = answer.headers;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    const cut = () => {
      upstream.destroy();
      req.socket.destroy();
    };
    upstream.on("error", () => req.socket.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    let gate = hold?.matches(record) ? hold : undefined;
    if (gate) hold = undefined;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const room = gate ? gate.afterBytes - record.bodyBytes : Number.POSITIVE_INFINITY;
        if (chunk.length <= room) {
          record.bodyBytes += chunk.length;
          return callback(null, chunk);
        }
        // The bytes up to the mark go on; the rest waits, and so does the browser (backpressure).
        record.bodyBytes += room;
        this.push(chunk.subarray(0, room));
        gate?.held({ request: record, drop: cut });
        gate = undefined;
      },
    });
    req.on("close", () => {
      if (!req.complete) upstream.destroy();
    });
    req.pipe(counter).pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    bytesFrom: (from) => requests.slice(from).reduce((sum, one) => sum + one.bodyBytes, 0),
    failNext: (matches, faults) => void (failing = { matches, faults: [...faults] }),
    holdNext: (matches, afterBytes) => new Promise<HeldRequest>((held) => (hold = { matches, afterBytes, held })),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
