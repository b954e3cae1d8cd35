// The JSON requests of media-intake/browser's helpers (the possession check, the detection polls):
// the token as a Bearer header, the answer read whole as text, a request with no answer turned
// into an UploadRequestError of status 0, an abort into the signal's reason.
import { unanswered } from "./request-error.ts";

/** What a request answered. */
export interface JsonAnswer {
  status: number;
  /** The body as text (`""` when empty). */
  text: string;
  headers: Headers;
  /** The URL that answered (after redirects): relative links resolve against it. */
  url: string;
}

export interface JsonRequest {
  method: "GET" | "POST";
  url: string;
  token: string;
  body?: unknown;
  signal?: AbortSignal | undefined;
  fetch?: typeof fetch | undefined;
}

/** Sends a request and reads its answer whole. @throws {UploadRequestError} no answer (status 0); the signal's reason when it aborts. */
export async function requestJson(request: JsonRequest): Promise<JsonAnswer> {
  const { signal } = request;
  // A local of its own: `options.fetch(…)` would call it with `options` as `this`, which a
  // browser's fetch refuses (Illegal invocation).
  const send = request.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${request.token}` };
  if (request.body !== undefined) headers["content-type"] = "application/json";
  try {
    const response = await send(request.url, {
      method: request.method,
      headers,
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      ...(signal ? { signal } : {}),
    });
    return { status: response.status, text: await response.text(), headers: response.headers, url: response.url || request.url };
  } catch (error) {
    throw unanswered(error, signal);
  }
}

/** The JSON of an answer's body, or `undefined` when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
