// The annotations client's requests and their answers, against the fake service behind msw: what
// goes on the wire (the record, the token, the user agent, the debug log), how a record is read
// back, which error each refusal is, createOrGet, and the client's options.
import { http, HttpResponse } from "msw";
import { describe, expect, it } from "vitest";
import {
  AnnotationsAuthError,
  type AnnotationsClientOptions,
  AnnotationsHttpError,
  AnnotationsResponseError,
  createAnnotationsClient,
  InvalidMediaIdError,
  MediaConflictError,
  MediaStatus,
  MediaType,
} from "../src/index.ts";
import { id, path, record, TOKEN, useAnnotationsClientFixture } from "./helpers/annotations-client.ts";
import { MOCK_BASE_URL } from "./helpers/msw-annotations.ts";

const fixture = useAnnotationsClientFixture();
const { server, logLines, client, failure, sequence } = fixture;

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
    expect(fixture.fake.log.at(-1)?.authorization).toBe("Bearer caller-token");
    await client({ token: undefined, getToken: async () => "service-token" }).media.get(id);
    expect(fixture.fake.log.at(-1)?.authorization).toBe("Bearer service-token");
  });

  it("refuses to call without a token, before any request", async () => {
    const error = await failure(client({ token: undefined }).media.get(id));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^No bearer token for GET \/api\/media\//);
    expect(fixture.fake.log).toEqual([]);
  });

  it("refuses a virtual ID and a status it must not write, before any request", async () => {
    await expect(client().media.create({ ...record, id: `V${id}` })).rejects.toBeInstanceOf(InvalidMediaIdError);
    await expect(client().media.updateStatus(id, 4 as MediaStatus)).rejects.toThrow(
      "Expected `status` to be one of MediaStatus (1, 2, 3 or 6), got 4.",
    );
    expect(fixture.fake.log).toEqual([]);
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
    expect(fixture.fake.log).toHaveLength(0);
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

describe("createOrGet", () => {
  it("creates when new and reads when the record exists", async () => {
    expect(await client().media.createOrGet(record)).toEqual({ created: true, record: { ...record, mediaStatus: 1 } });
    await client().media.updateStatus(id, MediaStatus.AIProcessing);
    expect(await client().media.createOrGet(record)).toEqual({ created: false, record: { ...record, mediaStatus: 2 } });
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
