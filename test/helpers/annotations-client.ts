// What the annotations client's tests (test/annotations-client-*.test.ts) start from: a media
// record and a caller's token, the fake annotations service behind msw at MOCK_BASE_URL (fresh for
// each test), a client with short retries that logs to memory, and a check after each test that
// no error the test produced, nor any log line, holds the token.
import { inspect } from "node:util";
import { http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, expect } from "vitest";
import { type AnnotationsClientOptions, createAnnotationsClient, MediaType } from "../../src/index.ts";
import { createFakeAnnotations, type FakeAnnotations } from "./fake-annotations.ts";
import { annotationsHandlers, MOCK_BASE_URL } from "./msw-annotations.ts";

export const TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2VjcmV0LXNpZ25hdHVyZQ";
export const id = "6a9b7ce7844aa871";
export const path = `/api/media/${id}`;
export const record = { id, name: "clip.MP4", path: "/data/videos/6a9b7ce7844aa871.mp4", mediaType: MediaType.Video, userId: "user-42" };

/** What each test of a file that calls {@link useAnnotationsClientFixture} finds. */
export interface AnnotationsClientFixture {
  /** The msw server: a test adds its own handlers with `server.use`. */
  server: ReturnType<typeof setupServer>;
  /** The fake service behind the default handlers, fresh for each test. */
  fake: FakeAnnotations;
  /** The client's debug lines, emptied before each test. */
  logLines: Array<Record<string, unknown>>;
  /** A client of the fake service with the caller's token, 3 quick retries and its log in `logLines`. */
  client(options?: Partial<AnnotationsClientOptions>): ReturnType<typeof createAnnotationsClient>;
  /** The error `promise` rejects with (a resolution fails the test), checked for the token after the test. */
  failure(promise: Promise<unknown>): Promise<Error>;
  /** A handler that answers each call with the next of `answers` (the last one repeats); returns the count of calls. */
  sequence(method: "get" | "post" | "put", url: string, answers: Array<() => Response | Promise<Response>>): () => number;
}

/**
 * Gives every test of the calling file the msw server (listening for the whole file) with the
 * fake service's handlers, and checks after each test that the token is in none of the errors
 * `failure` saw nor in the log.
 */
export function useAnnotationsClientFixture(): AnnotationsClientFixture {
  const server = setupServer();
  const logLines: Array<Record<string, unknown>> = [];
  const errors: unknown[] = [];
  const fixture = {
    server,
    logLines,
    client: (options = {}) =>
      createAnnotationsClient({
        baseUrl: MOCK_BASE_URL,
        token: TOKEN,
        retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
        logger: { debug: (fields) => logLines.push(fields) },
        ...options,
      }),
    async failure(promise) {
      const error = await promise.then(
        () => {
          throw new Error("expected a rejection");
        },
        (e: unknown) => e,
      );
      errors.push(error);
      return error as Error;
    },
    sequence(method, url, answers) {
      let call = 0;
      server.use(
        http[method](`${MOCK_BASE_URL}${url}`, () => {
          const answer = answers[Math.min(call, answers.length - 1)];
          call += 1;
          return answer?.();
        }),
      );
      return () => call;
    },
  } as AnnotationsClientFixture;

  beforeAll(() => server.listen({ onUnhandledFrame: "bypass" }));
  beforeEach(() => {
    fixture.fake = createFakeAnnotations();
    logLines.splice(0);
    server.resetHandlers(...annotationsHandlers(fixture.fake));
  });
  afterAll(() => server.close());

  // Every error a test produced is checked for the token on its way out.
  afterEach(() => {
    for (const error of errors.splice(0)) {
      const text = [inspect(error, { depth: 6 }), JSON.stringify(error), (error as Error).message, (error as Error).stack].join("\n");
      expect(text).not.toContain(TOKEN);
    }
    expect(JSON.stringify(logLines)).not.toContain(TOKEN);
  });
  return fixture;
}
