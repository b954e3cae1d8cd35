// The annotations client's retries and deadlines, against the fake service behind msw: which
// answers are retried and how often, Retry-After, per-attempt and total timeouts, aborts between
// attempts and before the first one (getToken pending, modules loading), and retry: false.
import { delay, http, HttpResponse } from "msw";
import { describe, expect, it, vi } from "vitest";
import { AnnotationsUnavailableError, MediaStatus } from "../src/index.ts";
import { id, path, record, TOKEN, useAnnotationsClientFixture } from "./helpers/annotations-client.ts";
import { startServer } from "./helpers/http-server.ts";
import { MOCK_BASE_URL } from "./helpers/msw-annotations.ts";

const fixture = useAnnotationsClientFixture();
const { server, logLines, client, failure, sequence } = fixture;

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
        const answer = fixture.fake.handle({ method: "POST", path: "/api/media", authorization: request.headers.get("authorization"), body: await request.text() });
        // The first attempt lands, but its answer is lost to a gateway error.
        return calls === 1 ? new HttpResponse(null, { status: 502 }) : HttpResponse.json(answer.body as Record<string, unknown>, { status: answer.status });
      }),
    );
    expect(await client().media.create(record)).toEqual({ ...record, mediaStatus: MediaStatus.New });
    expect(calls).toBe(2);
    expect(fixture.fake.log.map((entry) => `${entry.method} ${entry.path}`)).toEqual(["POST /api/media", "POST /api/media", `GET ${path}`]);
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
