import { inspect } from "node:util";
import { gzipSync } from "node:zlib";
import { delay, http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  AnnotationsAuthError,
  type AnnotationsClientOptions,
  AnnotationsHttpError,
  AnnotationsResponseError,
  AnnotationsUnavailableError,
  createAnnotationsClient,
  InvalidMediaIdError,
  MediaConflictError,
  MediaStatus,
  MediaType,
} from "../src/index.ts";
import { createFakeAnnotations, type FakeAnnotations } from "./helpers/fake-annotations.ts";
import { startServer } from "./helpers/http-server.ts";
import { annotationsHandlers, MOCK_BASE_URL } from "./helpers/msw-annotations.ts";

const TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2VjcmV0LXNpZ25hdHVyZQ";
const id = "6a9b7ce7844aa871";
const path = `/api/media/${id}`;
const record = { id, name: "clip.MP4", path: "/data/videos/6a9b7ce7844aa871.mp4", mediaType: MediaType.Video, userId: "user-42" };

const server = setupServer();
let fake: FakeAnnotations;
let logLines: Array<Record<string, unknown>>;

beforeAll(() => server.listen({ onUnhandledFrame: "bypass" }));
beforeEach(() => {
  fake = createFakeAnnotations();
  logLines = [];
  server.resetHandlers(...annotationsHandlers(fake));
});
afterAll(() => server.close());

/** Every error a test produced is checked for the token on its way out. */
const errors: unknown[] = [];
afterEach(() => {
  for (const error of errors.splice(0)) {
    const text = [inspect(error, { depth: 6 }), JSON.stringify(error), (error as Error).message, (error as Error).stack].join("\n");
    expect(text).not.toContain(TOKEN);
  }
  expect(JSON.stringify(logLines)).not.toContain(TOKEN);
});

function client(options: Partial<AnnotationsClientOptions> = {}) {
  return createAnnotationsClient({
    baseUrl: MOCK_BASE_URL,
    token: TOKEN,
    retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
    logger: { debug: (fields) => logLines.push(fields) },
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  errors.push(error);
  return error as Error;
}

/** A handler that answers each call with the next of `answers` (the last one repeats). */
function sequence(method: "get" | "post" | "put", url: string, answers: Array<() => Response | Promise<Response>>) {
  let call = 0;
  server.use(
    http[method](`${MOCK_BASE_URL}${url}`, () => {
      const answer = answers[Math.min(call, answers.length - 1)];
      call += 1;
      return answer?.();
    }),
  );
  return () => call;
}

describe("requests on the wire", () => {
  it("POSTs the record PascalCase, with the bearer token, JSON and a user agent", async () => {
    let seen: Request | undefined;
    let body: unknown;
    server.use(
      http.post(`${MOCK_BASE_URL}/api/media`, async ({ request }) => {
        seen = request.clone();
        body = await request.json();
        return new HttpResponse(null, { status: 201 });
      }),
    );
    await client().media.create(record);
    expect(body).toEqual({ Id: id, Name: "clip.MP4", Path: record.path, MediaType: 1, MediaStatus: 1, UserId: "user-42" });
    expect(seen?.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
    expect(seen?.headers.get("content-type")).toMatch(/^application\/json/);
    expect(seen?.headers.get("user-agent")).toMatch(/^media-intake\/\d+\.\d+\.\d+/);
  });

  it("uses the per-call token over the client's, and getToken when neither is given", async () => {
    await client().media.create(record, { token: "Bearer caller-token" });
    expect(fake.log.at(-1)?.authorization).toBe("Bearer caller-token");
    await client({ token: undefined, getToken: async () => "service-token" }).media.get(id);
    expect(fake.log.at(-1)?.authorization).toBe("Bearer service-token");
  });

  it("refuses to call without a token, before any request", async () => {
    const error = await failure(client({ token: undefined }).media.get(id));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^No bearer token for GET \/api\/media\//);
    expect(fake.log).toEqual([]);
  });

  it("refuses a virtual ID and a status it must not write, before any request", async () => {
    await expect(client().media.create({ ...record, id: `V${id}` })).rejects.toBeInstanceOf(InvalidMediaIdError);
    await expect(client().media.updateStatus(id, 4 as MediaStatus)).rejects.toThrow(
      "Expected `status` to be one of MediaStatus (1, 2, 3 or 6), got 4.",
    );
    expect(fake.log).toEqual([]);
  });

  it("logs one debug line per attempt, without headers or bodies", async () => {
    sequence("get", path, [() => new HttpResponse(null, { status: 503 }), () => HttpResponse.json({ ...record, mediaStatus: 1 })]);
    await client().media.get(id);
    expect(logLines.map(({ method, path: p, status, attempt }) => ({ method, path: p, status, attempt }))).toEqual([
      { method: "GET", path, status: 503, attempt: 1 },
      { method: "GET", path, status: 200, attempt: 2 },
    ]);
    expect(typeof logLines[0]?.durationMs).toBe("number");
  });
});

describe("responses", () => {
  it("accepts PascalCase fields, enum names, and either case of the Id", async () => {
    server.use(
      http.get(`${MOCK_BASE_URL}${path}`, () =>
        HttpResponse.json({ Id: id.toUpperCase(), Name: "clip.MP4", Path: record.path, MediaType: "Video", MediaStatus: "AIProcessed", UserId: "user-42", Extra: true }),
      ),
    );
    expect(await client().media.get(id)).toEqual({ ...record, mediaStatus: MediaStatus.AIProcessed });
  });

  it("keeps status values of the service's later stages", async () => {
    server.use(http.get(`${MOCK_BASE_URL}${path}`, () => HttpResponse.json({ ...record, mediaType: 2, mediaStatus: 5 })));
    expect(await client().media.get(id)).toMatchObject({ mediaType: MediaType.Image, mediaStatus: 5 });
  });

  it.each([
    [201, null],
    [204, null],
  ])("returns the record sent when create answers %i without a body", async (status) => {
    server.use(http.post(`${MOCK_BASE_URL}/api/media`, () => new HttpResponse(null, { status })));
    expect(await client().media.create(record)).toEqual({ ...record, mediaStatus: MediaStatus.New });
  });

  it("a body that is not JSON is an AnnotationsResponseError", async () => {
    server.use(http.get(`${MOCK_BASE_URL}${path}`, () => new HttpResponse("{not json", { headers: { "content-type": "application/json" } })));
    const error = await failure(client().media.get(id));
    expect(error).toBeInstanceOf(AnnotationsResponseError);
    expect(error.message).toBe(`GET ${path}: the response body is not JSON`);
  });

  it("a body that is not a media record names what does not match", async () => {
    server.use(http.get(`${MOCK_BASE_URL}${path}`, () => HttpResponse.json({ id, name: "x", mediaType: "Banana", mediaStatus: 1, userId: "u" })));
    const error = await failure(client().media.get(id));
    expect(error).toBeInstanceOf(AnnotationsResponseError);
    expect(error.message).toMatch(/^GET \/api\/media\/6a9b7ce7844aa871: the response body is not a media record \(.*path.*mediaType: expected one of Video, Image, got "Banana"/);
    expect((error as AnnotationsResponseError).issues.map((issue) => issue.path.join("."))).toEqual(["path", "mediaType"]);
  });
});

describe("errors", () => {
  it("puts an RFC 9457 problem body in the error", async () => {
    server.use(
      http.post(`${MOCK_BASE_URL}/api/media`, () =>
        HttpResponse.json(
          { type: "about:blank", title: "One or more validation errors occurred.", status: 400, errors: { Path: ["The Path field is required."] } },
          { status: 400, headers: { "content-type": "application/problem+json" } },
        ),
      ),
    );
    const error = await failure(client().media.create(record));
    expect(error).toBeInstanceOf(AnnotationsHttpError);
    expect(error.message).toBe("POST /api/media: 400 Bad Request — One or more validation errors occurred.; Path: The Path field is required.");
    expect((error as AnnotationsHttpError).problem).toEqual({
      title: "One or more validation errors occurred.",
      detail: undefined,
      errors: { Path: ["The Path field is required."] },
    });
    expect(fake.log).toHaveLength(0);
  });

  it.each([401, 403])("%i is an AnnotationsAuthError, not retried", async (status) => {
    const calls = sequence("get", path, [() => HttpResponse.json({ title: "Nope" }, { status })]);
    const error = await failure(client().media.get(id));
    expect(error).toBeInstanceOf(AnnotationsAuthError);
    expect(error).toMatchObject({ status, attempts: 1, code: "ANNOTATIONS_AUTH_FAILED" });
    expect(calls()).toBe(1);
  });

  it("a 409 on the first attempt is a MediaConflictError", async () => {
    await client().media.create(record);
    const error = await failure(client().media.create(record));
    expect(error).toBeInstanceOf(MediaConflictError);
    expect(error.message).toBe(`POST /api/media: 409 Conflict — Conflict; Media ${id} already exists.`);
  });
});

describe("retries", () => {
  it.each([408, 429, 500, 502, 503, 504])("retries GET after %i", async (status) => {
    const calls = sequence("get", path, [() => new HttpResponse(null, { status }), () => HttpResponse.json({ ...record, mediaStatus: 1 })]);
    expect((await client().media.get(id)).id).toBe(id);
    expect(calls()).toBe(2);
  });

  it("gives up after the retries with the status and the attempt count", async () => {
    await client().media.create(record);
    const calls = sequence("put", `${path}/status`, [() => new HttpResponse(null, { status: 503 })]);
    const error = await failure(client().media.updateStatus(id, MediaStatus.AIProcessing));
    expect(error.message).toBe(`PUT ${path}/status: 503 Service Unavailable (after 4 attempts)`);
    expect(error).toMatchObject({ status: 503, attempts: 4 });
    expect(calls()).toBe(4);
  });

  it("does not retry other 4xx answers", async () => {
    const calls = sequence("put", `${path}/status`, [() => new HttpResponse(null, { status: 422 })]);
    await failure(client().media.updateStatus(id, MediaStatus.Error));
    expect(calls()).toBe(1);
  });

  it("honours Retry-After on 429", async () => {
    const calls = sequence("get", path, [
      () => new HttpResponse(null, { status: 429, headers: { "retry-after": "1" } }),
      () => HttpResponse.json({ ...record, mediaStatus: 1 }),
    ]);
    const started = performance.now();
    await client().media.get(id);
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    expect(calls()).toBe(2);
  });

  it("retries POST, and a 409 after a retry returns the record the first attempt created", async () => {
    let calls = 0;
    server.use(
      http.post(`${MOCK_BASE_URL}/api/media`, async ({ request }) => {
        calls += 1;
        const answer = fake.handle({ method: "POST", path: "/api/media", authorization: request.headers.get("authorization"), body: await request.text() });
        // The first attempt lands, but its answer is lost to a gateway error.
        return calls === 1 ? new HttpResponse(null, { status: 502 }) : HttpResponse.json(answer.body as Record<string, unknown>, { status: answer.status });
      }),
    );
    expect(await client().media.create(record)).toEqual({ ...record, mediaStatus: MediaStatus.New });
    expect(calls).toBe(2);
    expect(fake.log.map((entry) => `${entry.method} ${entry.path}`)).toEqual(["POST /api/media", "POST /api/media", `GET ${path}`]);
  });

  it("a network failure after the retries is AnnotationsUnavailableError", async () => {
    const down = await startServer(() => {});
    const url = down.url;
    await down.close();
    const error = await failure(client({ baseUrl: url }).media.get(id));
    expect(error).toBeInstanceOf(AnnotationsUnavailableError);
    expect(error.message).toBe(`GET ${path}: could not reach the service (ECONNREFUSED) (after 4 attempts)`);
  });

  it("a timed-out attempt is retried, then reported as unavailable", async () => {
    const calls = sequence("get", path, [
      async () => {
        await delay(500);
        return HttpResponse.json({ ...record, mediaStatus: 1 });
      },
    ]);
    const error = await failure(client({ timeoutMs: 50, retry: { retries: 1, baseDelayMs: 1 } }).media.get(id));
    expect(error).toBeInstanceOf(AnnotationsUnavailableError);
    expect(error.message).toMatch(/^GET \/api\/media\/6a9b7ce7844aa871: no answer in time .* \(after 2 attempts\)$/);
    expect(calls()).toBe(2);
  });

  it("stops at the total deadline, retries and waits included", async () => {
    const calls = sequence("get", path, [() => new HttpResponse(null, { status: 503 })]);
    const started = performance.now();
    // 50 retries of up to 200 ms each (jittered): only the 300 ms deadline can end the call
    // before they are spent, and then as a deadline (not as the last 503).
    const error = await failure(client({ totalTimeoutMs: 300, retry: { retries: 50, baseDelayMs: 200, maxDelayMs: 200 } }).media.get(id));
    expect(error).toBeInstanceOf(AnnotationsUnavailableError);
    expect(error.message).toMatch(/^GET \/api\/media\/6a9b7ce7844aa871: no answer in time \(/);
    expect(calls()).toBeLessThan(51);
    // Not before the deadline either: a 503 is retried until then.
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("an abort during the wait between retries rejects at once with the reason", async () => {
    const calls = sequence("get", path, [() => new HttpResponse(null, { status: 503, headers: { "retry-after": "3600" } })]);
    const controller = new AbortController();
    const reason = new Error("request cancelled");
    // The wait is an hour (Retry-After), far past the test's timeout: only the abort can end it.
    const waiting = client({
      totalTimeoutMs: 7_200_000,
      retry: { retries: 5, maxRetryAfterMs: 3_600_000 },
      logger: { debug: () => setImmediate(() => controller.abort(reason)) },
    });
    await expect(waiting.media.get(id, { signal: controller.signal })).rejects.toBe(reason);
    expect(calls()).toBe(1);
  });

  it("retry: false makes one attempt", async () => {
    const calls = sequence("get", path, [() => new HttpResponse(null, { status: 503 })]);
    await failure(client({ retry: false }).media.get(id));
    expect(calls()).toBe(1);
  });

  it("retry: false reports a timed-out attempt as unavailable, after one attempt", async () => {
    const calls = sequence("get", path, [
      async () => {
        await delay(500);
        return HttpResponse.json({ ...record, mediaStatus: 1 });
      },
    ]);
    const error = await failure(client({ timeoutMs: 50, retry: false }).media.get(id));
    expect(error).toBeInstanceOf(AnnotationsUnavailableError);
    expect(error.message).toBe("GET /api/media/6a9b7ce7844aa871: no answer in time (50 ms per attempt, or the call's deadline)");
    expect(error).toMatchObject({ attempts: 1 });
    expect(calls()).toBe(1);
  });

  it("a 503 then a success answers with the second attempt's record, after a backoff wait", async () => {
    const calls = sequence("get", path, [() => new HttpResponse(null, { status: 503 }), () => HttpResponse.json({ ...record, mediaStatus: 2 })]);
    expect(await client().media.get(id)).toMatchObject({ id, mediaStatus: MediaStatus.AIProcessing });
    expect(calls()).toBe(2);
    expect(logLines.map((line) => line.status)).toEqual([503, 200]);
  });

  it("does not retry an error of the fetch itself that is not the network's", async () => {
    let calls = 0;
    const broken = (async () => {
      calls += 1;
      throw new RangeError("a bug in a custom fetch");
    }) as typeof fetch;
    const error = await failure(client({ fetch: broken }).media.get(id));
    expect(error).toBeInstanceOf(RangeError);
    expect(calls).toBe(1);
  });
});

describe("aborts before the first attempt", () => {
  /** The call's outcome once every microtask an abort set off has run: `"pending"` if none. */
  async function outcomeSoon(call: Promise<unknown>): Promise<unknown> {
    const outcome = call.then(() => "resolved", (error: unknown) => error);
    await new Promise((resolve) => setImmediate(resolve));
    return Promise.race([outcome, "pending"]);
  }

  it("an abort while getToken is pending rejects at once with the reason, and sends nothing", async () => {
    const calls = sequence("get", path, [() => HttpResponse.json({ ...record, mediaStatus: 1 })]);
    let giveToken: (token: string) => void = () => {};
    const tokens = [new Promise<string>((resolve) => (giveToken = resolve))];
    const withGetter = client({ token: undefined, getToken: () => tokens.shift() ?? TOKEN });
    const controller = new AbortController();
    const reason = new Error("request cancelled");
    const pending = withGetter.media.get(id, { signal: controller.signal });
    controller.abort(reason);
    expect(await outcomeSoon(pending)).toBe(reason);
    giveToken(TOKEN);
    // A call made once the token came reaches the service alone: the aborted one sent nothing.
    await withGetter.media.get(id);
    expect(calls()).toBe(1);
  });

  it("an abort while the client's modules load rejects with the reason, and sends nothing", async () => {
    const calls = sequence("get", path, [() => HttpResponse.json({ ...record, mediaStatus: 1 })]);
    vi.resetModules();
    const fresh = (await import("../src/annotations/client.ts")).createAnnotationsClient({ baseUrl: MOCK_BASE_URL, token: TOKEN, retry: false });
    const controller = new AbortController();
    const reason = new Error("request cancelled");
    const pending = fresh.media.get(id, { signal: controller.signal });
    controller.abort(reason);
    expect(await outcomeSoon(pending)).toBe(reason);
    await fresh.media.get(id);
    expect(calls()).toBe(1);
  });

  it("an abort right after the call rejects with the reason", async () => {
    const controller = new AbortController();
    const reason = new Error("request cancelled");
    const pending = client().media.create(record, { signal: controller.signal });
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("a getToken that never answers ends at the call's deadline, as unavailable, with nothing sent", async () => {
    const calls = sequence("get", path, [() => HttpResponse.json({ ...record, mediaStatus: 1 })]);
    const error = await failure(client({ token: undefined, getToken: () => new Promise<string>(() => {}), totalTimeoutMs: 100 }).media.get(id));
    expect(error).toBeInstanceOf(AnnotationsUnavailableError);
    expect(error.message).toBe(`GET ${path}: getToken did not answer within the call's deadline (100 ms)`);
    expect(calls()).toBe(0);
  });
});

describe("createOrGet", () => {
  it("creates when new and reads when the record exists", async () => {
    expect(await client().media.createOrGet(record)).toEqual({ created: true, record: { ...record, mediaStatus: 1 } });
    await client().media.updateStatus(id, MediaStatus.AIProcessing);
    expect(await client().media.createOrGet(record)).toEqual({ created: false, record: { ...record, mediaStatus: 2 } });
  });
});

describe("what the service sends slowly or badly", () => {
  it("a body that stalls after the headers fails within the call's deadline, as unavailable", async () => {
    const stalling = await startServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"Id":"6a9b');
    });
    try {
      const client = createAnnotationsClient({ baseUrl: stalling.url, token: TOKEN, timeoutMs: 200, totalTimeoutMs: 500, retry: false });
      const error = await client.media.get(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect((error as Error).message).toMatch(/^GET \/api\/media\/6a9b7ce7844aa871: the response body did not arrive in time \(\d+ ms\)$/);
    } finally {
      await stalling.close();
    }
  });

  it("a token with a line break is refused before any request, and the error never holds it", async () => {
    let requests = 0;
    const counting = await startServer((_, response) => {
      requests += 1;
      response.writeHead(204).end();
    });
    try {
      const secret = `${TOKEN}\r\nX-Injected: 1`;
      const client = createAnnotationsClient({ baseUrl: counting.url, retry: false });
      const error = await client.media.updateStatus(id, MediaStatus.AIProcessing, { token: secret }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(`The bearer token for PUT /api/media/${id}/status holds a control character (a line break?); it cannot be sent in a header.`);
      expect(inspect(error, { depth: 10 })).not.toContain(TOKEN);
      expect(requests).toBe(0);
    } finally {
      await counting.close();
    }
  });
});

describe("response bodies are read up to 1 MiB", () => {
  const MiB = 1024 * 1024;
  const unnamed = JSON.stringify({ ...record, name: "", mediaStatus: 1 }).length;
  /** A record whose name pads its JSON to exactly `bytes` bytes. */
  function recordOf(bytes: number): string {
    return JSON.stringify({ ...record, name: "a".repeat(bytes - unnamed), mediaStatus: 1 });
  }

  /**
   * A service whose GET answers 503 `failures` times, then 200 with a body without end
   * (chunked, as fast as the client reads). `closed` resolves, with the bytes it wrote, once
   * the client has dropped the connection.
   */
  async function endlessService(failures: number) {
    let requests = 0;
    let written = 0;
    let dropped: (bytes: number) => void = () => {};
    const closed = new Promise<number>((resolve) => (dropped = resolve));
    const service = await startServer((_, response) => {
      requests += 1;
      if (requests <= failures) return void response.writeHead(503).end();
      response.writeHead(200, { "content-type": "application/json" });
      response.on("close", () => dropped(written));
      response.write('{"Id":"6a9b7ce7844aa871","Name":"');
      const chunk = Buffer.alloc(64 * 1024, "a");
      const pump = () => {
        while (!response.destroyed) {
          written += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
      };
      pump();
    });
    return { ...service, closed };
  }

  it.each([
    ["the first attempt", 0],
    ["a retry", 1],
  ])("a body without end, on %s, fails as unavailable once past 1 MiB, and the connection is dropped", async (_, failures) => {
    const service = await endlessService(failures);
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: { retries: 1, baseDelayMs: 1 } }).media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB${failures ? " (after 2 attempts)" : ""}`);
      // The service went on past the limit; the client stopped reading near it (what the
      // service wrote beyond sat in socket buffers) and hung up.
      const written = await service.closed;
      expect(written).toBeGreaterThan(MiB);
      expect(written).toBeLessThan(32 * MiB);
    } finally {
      await service.close();
    }
  });

  it.each([
    ["with", true],
    ["without", false],
  ])("reads a body of exactly 1 MiB and refuses one byte more, %s Content-Length", async (_, declared) => {
    let size = MiB;
    const service = await startServer((_, response) => {
      const body = recordOf(size);
      response.writeHead(200, declared ? { "content-type": "application/json", "content-length": body.length } : { "content-type": "application/json" });
      if (declared) return void response.end(body);
      // Chunked: Node sends no Content-Length for a body written in parts.
      response.write(body.slice(0, 10));
      response.end(body.slice(10));
    });
    try {
      const annotations = createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false });
      expect((await annotations.media.get(id)).name).toHaveLength(MiB - unnamed);
      size = MiB + 1;
      const error = await failure(annotations.media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB`);
    } finally {
      await service.close();
    }
  });

  it("a 201 to a POST whose body is over 1 MiB is an unknown outcome (the record may exist), refused unread", async () => {
    const service = await startServer((_, response) => {
      const body = recordOf(2 * MiB);
      // Only the start is sent: a client that waited for the rest would fail on its timeout.
      response.writeHead(201, { "content-type": "application/json", "content-length": body.length }).write(body.slice(0, 1024));
    });
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.create(record));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe("POST /api/media: the response body is over 1 MiB");
    } finally {
      await service.close();
    }
  });

  it("an error answer whose body is over 1 MiB keeps its status, without the body", async () => {
    const service = await startServer((_, response) => {
      const body = JSON.stringify({ title: "x".repeat(2 * MiB) });
      response.writeHead(400, { "content-type": "application/problem+json", "content-length": body.length }).end(body);
    });
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.create(record));
      expect(error).toBeInstanceOf(AnnotationsHttpError);
      expect(error.message).toBe("POST /api/media: 400 Bad Request");
    } finally {
      await service.close();
    }
  });

  it("a compressed body is limited by its size once inflated, not by its Content-Length", async () => {
    const zipped = gzipSync(recordOf(8 * MiB));
    const service = await startServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": zipped.length }).end(zipped);
    });
    try {
      expect(zipped.length).toBeLessThan(MiB);
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB`);
    } finally {
      await service.close();
    }
  });
});

describe("options", () => {
  it("validates them when the client is made, naming the option", () => {
    expect(() => createAnnotationsClient({ baseUrl: "annotations:8080/x y" as string })).toThrow(/`baseUrl`/);
    expect(() => createAnnotationsClient({ baseUrl: "not a url" })).toThrow('createAnnotationsClient: expected `baseUrl` to be an absolute http(s) URL, got "not a url".');
    expect(() => createAnnotationsClient({ baseUrl: MOCK_BASE_URL, timeoutMs: -1 })).toThrow("createAnnotationsClient: expected `timeoutMs` to be a number of at least 1 ms, got -1.");
    expect(() => createAnnotationsClient({ baseUrl: MOCK_BASE_URL, retry: { retries: 1.5 } })).toThrow(/`retry.retries`/);
  });

  it("refuses an unknown or misspelt option, naming it", () => {
    expect(() => createAnnotationsClient({ baseUrl: MOCK_BASE_URL, nonsense: 1 } as AnnotationsClientOptions)).toThrow("Unknown option `nonsense` of createAnnotationsClient.");
    expect(() => createAnnotationsClient({ baseUrl: MOCK_BASE_URL, timeoutms: 5 } as AnnotationsClientOptions)).toThrow(
      "Unknown option `timeoutms` of createAnnotationsClient (did you mean `timeoutMs`?).",
    );
    expect(() => createAnnotationsClient({ baseUrl: MOCK_BASE_URL, retry: { retry: 2 } } as AnnotationsClientOptions)).toThrow(/Unknown option `retry` of createAnnotationsClient's `retry`/);
  });

  it("keeps a path prefix of the base URL", async () => {
    let seenPath = "";
    server.use(
      http.get(`${MOCK_BASE_URL}/annotations/api/media/:id`, ({ request }) => {
        seenPath = new URL(request.url).pathname;
        return HttpResponse.json({ ...record, mediaStatus: 1 });
      }),
    );
    await client({ baseUrl: `${MOCK_BASE_URL}/annotations` }).media.get(id);
    expect(seenPath).toBe(`/annotations${path}`);
  });
});
