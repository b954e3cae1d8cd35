// What came back from the annotations service: bodies read, and the typed errors made of answers
// and of their absence. No token reaches anything here: only the method, the path and the status,
// and the service's own text (its status text, its problem body) with the token taken out.
import {
  type AnnotationsCallInfo,
  AnnotationsAuthError,
  AnnotationsHttpError,
  AnnotationsRouteMissingError,
  AnnotationsUnavailableError,
  MediaConflictError,
  MediaNotFoundError,
  type ProblemDetails,
} from "../errors/index.ts";
import { raceAbort } from "../utils/index.ts";
import type { ProblemBody } from "./schema.ts";

/** Whether fetch failed without an answer (undici's "fetch failed", a connection cut: "terminated"). */
export function isRawNetworkError(error: unknown): error is TypeError {
  return error instanceof TypeError && (error.message === "fetch failed" || error.message === "terminated");
}

/** A failure without an answer that is retried: the network's, or the attempt's timeout. */
export function isRetryableFailure(error: unknown): boolean {
  return isRawNetworkError(error) || (error as Error)?.name === "TimeoutError";
}

/**
 * The most of a response body read: a media record or a problem body is a few KiB at most, and
 * a service that answers more (or without end) must not fill this process's memory.
 */
export const maxBodyBytes = 1024 * 1024;

/** A response body past {@link maxBodyBytes}; turned into the call's own error by its caller. */
export class BodyTooLargeError extends Error {
  constructor() {
    super(`the response body is over ${maxBodyBytes / 1024 / 1024} MiB`);
    this.name = "BodyTooLargeError";
  }
}

/** The body's size as sent, when that is its size once read: not for a compressed body. */
function declaredLength(response: Response): number | undefined {
  const encoding = response.headers.get("content-encoding");
  if (encoding !== null && encoding.trim().toLowerCase() !== "identity") return undefined;
  const length = response.headers.get("content-length");
  return length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
}

/**
 * Reads a response body as text, at most {@link maxBodyBytes} of it (else `BodyTooLargeError`),
 * cancelling it on any failure. A Content-Length within the limit is read in one go (fetch
 * holds the body to it); one over it is refused unread; a body without one (chunked, or
 * compressed) is counted as it comes. With `ms`, each read gives up after `ms` or on `signal`;
 * without, the request's own signal bounds it.
 */
export function readBody(response: Response, ms?: number, signal?: AbortSignal): Promise<string> {
  if (!response.body) return Promise.resolve("");
  const declared = declaredLength(response);
  if (declared !== undefined && declared > maxBodyBytes) {
    void response.body.cancel().catch(() => {});
    return Promise.reject(new BodyTooLargeError());
  }
  // Not wrapped: the fast path awaits fetch's own promise, nothing more.
  if (declared !== undefined && ms === undefined) return response.text();
  const deadline = ms === undefined ? undefined : signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  return readCounting(response.body, deadline);
}

/** Reads a body as text as it comes, counting its bytes; cancels it on any failure. */
async function readCounting(body: ReadableStream<Uint8Array>, deadline: AbortSignal | undefined): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await (deadline ? raceAbort(reader.read(), deadline) : reader.read());
      if (done) return text + decoder.decode();
      bytes += value.byteLength;
      if (bytes > maxBodyBytes) throw new BodyTooLargeError();
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    void reader.cancel().catch(() => {});
    throw error;
  }
}

/** Turns ky's errors into ours. Ky's own errors are never kept: their request holds the token. */
export async function mapError(ky: typeof import("ky"), error: unknown, info: AnnotationsCallInfo, timeoutMs: number, problemBody: typeof ProblemBody, token: string | undefined): Promise<unknown> {
  const { isHTTPError, isNetworkError, isTimeoutError } = ky;
  if (isHTTPError(error)) return httpError(error.response.status, error.response.statusText, error.data, info, problemBody, token);
  if (isTimeoutError(error)) return noAnswerInTime(info, timeoutMs);
  // ky's NetworkError wraps fetch's own ("fetch failed"), which is kept as the cause.
  if (isNetworkError(error)) return unreachable(info, (error as Error).cause as Error | undefined);
  return error;
}

export function noAnswerInTime(info: AnnotationsCallInfo, timeoutMs: number): AnnotationsUnavailableError {
  return new AnnotationsUnavailableError(info, `no answer in time (${timeoutMs} ms per attempt, or the call's deadline)`);
}

/** fetch's failure without an answer; its cause names the socket's error code. */
export function unreachable(info: AnnotationsCallInfo, fetchError: Error | undefined): AnnotationsUnavailableError {
  const code = (fetchError?.cause as { code?: string } | undefined)?.code;
  return new AnnotationsUnavailableError(info, `could not reach the service${code ? ` (${code})` : ""}`, fetchError);
}

/**
 * A success whose body could not be read (cut off, late, or over the limit): what the service
 * did is not known (a POST's record may exist), so it is unavailable, as a lost answer is.
 */
export function bodyFailure(info: AnnotationsCallInfo, timedOut: boolean, bound: number, error: unknown): AnnotationsUnavailableError {
  if (error instanceof BodyTooLargeError) return new AnnotationsUnavailableError(info, error.message);
  const reason = timedOut ? `the response body did not arrive in time (${bound} ms)` : "the response body was cut off";
  return new AnnotationsUnavailableError(info, reason, timedOut ? undefined : (error as Error));
}

/** How a 404 without a problem body reads: the probe's words too. */
const NOT_THE_CONTRACTS_404 = `, without a problem body: not the contract's "no such media" (check the base URL)`;

/**
 * Whether an error answer carries the contract's RFC 9457 problem body (a `title` or a `detail`):
 * what the annotations service says, as against a router's, a proxy's or another service's page.
 */
export function isContractProblem(problem: ProblemDetails | undefined): boolean {
  return Boolean(problem?.title || problem?.detail);
}

/** What stands in for a secret taken out of the service's text. */
const REDACTED = "[redacted]";

/**
 * The service's text without the token this call sent: the token itself (bare, or in its
 * `Bearer` form), any `Bearer <credentials>`, and anything shaped like a JWT (`eyJ…`, cut or
 * whole: another caller's token echoed back is a secret too). A service that echoes the request's
 * headers in its errors (a debug page, a proxy) would otherwise put the token in messages, logs
 * and answers.
 */
export function withoutSecrets(text: string, token: string | undefined): string {
  const bare = token?.replace(/^\s*Bearer\s+/i, "").trim();
  let shown = bare ? text.split(bare).join(REDACTED) : text;
  shown = shown.replace(/\bBearer\s+(?!\[redacted\])[^\s"',;<>]+/gi, `Bearer ${REDACTED}`);
  return shown.replace(/eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}/g, REDACTED);
}

/** A problem body with {@link withoutSecrets} applied to every text in it. */
function problemWithoutSecrets(problem: ProblemDetails, token: string | undefined): ProblemDetails {
  const clean = (text: string | undefined) => (text === undefined ? undefined : withoutSecrets(text, token));
  const errors = problem.errors && Object.fromEntries(Object.entries(problem.errors).map(([field, messages]) => [withoutSecrets(field, token), messages.map((message) => withoutSecrets(message, token))]));
  return {
    ...(problem.title !== undefined ? { title: clean(problem.title) } : {}),
    ...(problem.detail !== undefined ? { detail: clean(problem.detail) } : {}),
    ...(errors ? { errors } : {}),
  };
}

/** The error of an answer that is not a success; `data` is its body (text or parsed); `token` the one sent, taken out of the service's text. */
export function httpError(status: number, statusText: string, body: unknown, info: AnnotationsCallInfo, problemBody: typeof ProblemBody, token: string | undefined): AnnotationsHttpError {
  let data: unknown = body;
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch {
      data = undefined;
    }
  }
  const parsed = data && typeof data === "object" ? problemBody.safeParse(data) : undefined;
  const problem: ProblemDetails | undefined = parsed?.success ? problemWithoutSecrets(parsed.data, token) : undefined;
  const text = withoutSecrets(statusText, token) || defaultStatusText(status);
  // No such route: any 405, or a 404 to the create. A 404 elsewhere is "no such record" only
  // with the contract's problem body: a router's 404 (a wrong base path) says nothing of records.
  if (status === 405 || (status === 404 && info.method === "POST" && info.path === "/api/media")) return new AnnotationsRouteMissingError(info, status, text, problem);
  if (status === 404 && !isContractProblem(problem)) return new AnnotationsRouteMissingError(info, status, text, problem, NOT_THE_CONTRACTS_404);
  if (status === 404) return new MediaNotFoundError(info, text, problem);
  if (status === 409) return new MediaConflictError(info, text, problem);
  if (status === 401 || status === 403) return new AnnotationsAuthError(info, status, text, problem);
  return new AnnotationsHttpError(info, status, text, problem);
}

function defaultStatusText(status: number): string {
  const texts: Record<number, string> = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  return texts[status] ?? "Error";
}
