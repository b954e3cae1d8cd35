import type { KyInstance } from "ky";
import packageJson from "../../package.json" with { type: "json" };
import { type AnnotationsCallInfo, AnnotationsResponseError, MediaConflictError } from "../errors/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import { rejectUnknownOptions } from "../utils/options.ts";
import type { MediaType } from "../media-type/index.ts";
import { bodyFailure, httpError, isRawNetworkError, isRetryableFailure, mapError, noAnswerInTime, readBody, unreachable } from "./response.ts";
import { camelCaseKeys, type MediaRecord, MediaStatus, toWireRecord } from "./status.ts";

/**
 * ky and the zod codec, loaded with the first call (not at import: a service that only computes
 * IDs never pays for an HTTP client and a schema library).
 */
type Loaded = { ky: typeof import("ky"); schema: typeof import("./schema.ts") };
let loading: Promise<Loaded> | undefined;
let loaded: Loaded | undefined;
function load(): Promise<Loaded> {
  return (loading ??= Promise.all([import("ky"), import("./schema.ts")]).then(([kyModule, schema]) => (loaded = { ky: kyModule, schema })));
}

/** A pino-compatible logger: one `debug` line per attempt. */
export interface AnnotationsLogger {
  debug(fields: Record<string, unknown>, message?: string): void;
}

/** When calls are retried: network errors, timeouts, 408, 429 (honouring `Retry-After`) and 5xx. */
export interface AnnotationsRetryOptions {
  /** Retries after the first attempt. @default 3 */
  retries?: number;
  /** Delay before the first retry, doubled each time, with full jitter. @default 300 */
  baseDelayMs?: number;
  /** The longest delay between two attempts. @default 10_000 */
  maxDelayMs?: number;
  /** The longest `Retry-After` honoured; longer ones are cut to this. @default 60_000 */
  maxRetryAfterMs?: number;
}

/** Options of {@link createAnnotationsClient}. */
export interface AnnotationsClientOptions {
  /** Where the annotations service lives, e.g. `http://annotations:8080` (a path prefix is kept). */
  baseUrl: string | URL;
  /** The bearer token used when a call passes none. */
  token?: string;
  /** Supplies the bearer token when neither the call nor `token` does (a service account, say). */
  getToken?: () => string | Promise<string>;
  /** Per-attempt timeout. @default 10_000 */
  timeoutMs?: number;
  /** Deadline for a whole call, retries and waits included. @default 60_000 */
  totalTimeoutMs?: number;
  /** Retry policy, or `false` for one attempt only. */
  retry?: AnnotationsRetryOptions | false;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Gets one debug line per attempt: method, path, status, duration; never headers or bodies. */
  logger?: AnnotationsLogger;
  /** The `User-Agent` header. @default "media-intake/<version>" */
  userAgent?: string;
}

/** Per-call options. */
export interface AnnotationsCallOptions {
  /** The caller's bearer token (the upload's own JWT); wins over the client's. */
  token?: string;
  /** Aborts the call, retries included; it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** What `media.create` sends: a new record, by default with status New. */
export interface NewMediaRecord {
  id: string;
  name: string;
  path: string;
  mediaType: MediaType;
  userId: string;
  /** @default MediaStatus.New */
  mediaStatus?: MediaStatus;
}

/** The typed client of the annotations service's Media API. */
export interface AnnotationsClient {
  readonly media: {
    /**
     * `POST /api/media`. Resolves to the record the service returned, or the one sent when it
     * answered without a body. A virtual ID is refused before any request.
     * @throws {MediaConflictError} 409: a record with that ID exists. (A 409 after a retried
     * POST is read: when the record holds the UserId, Path and Name sent, the first attempt
     * landed and the record is returned.)
     */
    create(record: NewMediaRecord, options?: AnnotationsCallOptions): Promise<MediaRecord>;
    /** `create`, and on 409 the existing record: the normal path for a re-upload. */
    createOrGet(record: NewMediaRecord, options?: AnnotationsCallOptions): Promise<{ record: MediaRecord; created: boolean }>;
    /** `GET /api/media/{id}`. @throws {MediaNotFoundError} 404. */
    get(id: string, options?: AnnotationsCallOptions): Promise<MediaRecord>;
    /** `PUT /api/media/{id}/status`. @throws {MediaNotFoundError} 404. */
    updateStatus(id: string, status: MediaStatus, options?: AnnotationsCallOptions): Promise<void>;
  };
}

const defaults = {
  timeoutMs: 10_000,
  totalTimeoutMs: 60_000,
  retry: { retries: 3, baseDelayMs: 300, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 },
} as const;
const serverErrors = Array.from({ length: 100 }, (_, index) => 500 + index);
const writableStatuses = new Set<number>(Object.values(MediaStatus));

function positive(name: string, value: unknown, allowZero = false): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`Expected \`${name}\` to be a ${allowZero ? "non-negative" : "positive"} number, got ${String(value)}.`);
  }
  return value;
}

/**
 * Creates the client of the annotations service's Media API (docs/contract.md "Annotations service
 * API"), on ky. One client serves many users: pass each caller's token per call.
 *
 * @example
 * const annotations = createAnnotationsClient({ baseUrl: "http://annotations:8080" });
 * const record = await annotations.media.create(
 *   { id, name: "clip.MP4", path, mediaType: MediaType.Video, userId },
 *   { token: callerJwt },
 * );
 * await annotations.media.updateStatus(id, MediaStatus.AIProcessing, { token: callerJwt });
 */
export function createAnnotationsClient(options: AnnotationsClientOptions): AnnotationsClient {
  rejectUnknownOptions(options, ["baseUrl", "token", "getToken", "timeoutMs", "totalTimeoutMs", "retry", "fetch", "logger", "userAgent"], "createAnnotationsClient");
  if (options?.retry) rejectUnknownOptions(options.retry, ["retries", "baseDelayMs", "maxDelayMs", "maxRetryAfterMs"], "createAnnotationsClient's `retry`");
  let prefix: string;
  try {
    const url = new URL(String(options?.baseUrl));
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
    prefix = url.href;
  } catch {
    throw new TypeError(`Expected \`baseUrl\` to be an absolute http(s) URL, got ${JSON.stringify(String(options?.baseUrl))}.`);
  }
  const timeoutMs = positive("timeoutMs", options.timeoutMs ?? defaults.timeoutMs);
  const totalTimeoutMs = positive("totalTimeoutMs", options.totalTimeoutMs ?? defaults.totalTimeoutMs);
  const retry = options.retry === false ? { ...defaults.retry, retries: 0 } : { ...defaults.retry, ...options.retry };
  if (!Number.isInteger(retry.retries) || retry.retries < 0) {
    throw new TypeError(`Expected \`retry.retries\` to be a non-negative integer, got ${String(retry.retries)}.`);
  }
  positive("retry.baseDelayMs", retry.baseDelayMs, true);
  positive("retry.maxDelayMs", retry.maxDelayMs, true);
  positive("retry.maxRetryAfterMs", retry.maxRetryAfterMs, true);
  const baseFetch = options.fetch ?? globalThis.fetch;
  const { logger } = options;

  const userAgent = options.userAgent ?? `media-intake/${packageJson.version}`;
  const base = prefix.endsWith("/") ? prefix : `${prefix}/`;
  const retryable = new Set([408, 429, ...serverErrors]);

  const createApi = (ky: typeof import("ky")["default"]): KyInstance => ky.create({
    prefix,
    timeout: timeoutMs,
    totalTimeout: totalTimeoutMs,
    headers: { "user-agent": userAgent, accept: "application/json" },
    retry: {
      limit: retry.retries,
      methods: ["get", "put", "post"],
      statusCodes: [408, 429, ...serverErrors],
      afterStatusCodes: [429, 503],
      maxRetryAfter: retry.maxRetryAfterMs,
      backoffLimit: retry.maxDelayMs,
      delay: (attempt) => retry.baseDelayMs * 2 ** (attempt - 1),
      jitter: true,
      retryOnTimeout: true,
    },
  });
  let api: KyInstance | undefined;

  async function tokenFor(call: AnnotationsCallOptions, method: string, path: string): Promise<string> {
    const token = call.token ?? options.token ?? (await options.getToken?.());
    if (typeof token !== "string" || token.trim() === "") {
      throw new TypeError(`No bearer token for ${method} ${path}: pass \`token\` to the call, or \`token\`/\`getToken\` to createAnnotationsClient.`);
    }
    const bare = token.replace(/^\s*Bearer\s+/i, "").trim();
    // A header cannot carry it, and fetch's own error would quote it: refuse it here, unquoted.
    if (/[\u0000-\u001f\u007f]/.test(bare)) {
      throw new TypeError(`The bearer token for ${method} ${path} holds a control character (a line break?); it cannot be sent in a header.`);
    }
    return bare;
  }

  /** The outcome of {@link firstAttempt}: an answer to keep (its body read), one to retry, or a failure. */
  type FirstOutcome = { kept: Response; text: string } | { retry: Response } | { error: unknown };

  /**
   * The first attempt, on fetch itself: ky builds, merges and clones a `Request` per call so
   * that it can send it again, which costs more than the call on a fast service. Only a call
   * that needs a retry goes through ky, which is handed this attempt's outcome first. The
   * bounds are ky's: `timeoutMs` until the headers, then the body within what is left of the
   * per-attempt and whole-call bounds.
   */
  async function firstAttempt(url: string, init: RequestInit, signal: AbortSignal | undefined, send: (input: string, init: RequestInit) => Promise<Response>, info: AnnotationsCallInfo): Promise<FirstOutcome> {
    const started = performance.now();
    const controller = new AbortController();
    let timedOut = false;
    const arm = (ms: number) =>
      setTimeout(() => {
        timedOut = true;
        controller.abort(new DOMException(`No answer within ${ms} ms`, "TimeoutError"));
      }, ms);
    let timer = arm(Math.min(timeoutMs, totalTimeoutMs));
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", forward, { once: true });
    try {
      let response: Response;
      try {
        response = await send(url, { ...init, signal: controller.signal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        return { error };
      }
      if (!response.ok && retryable.has(response.status) && retry.retries > 0) return { retry: response };
      clearTimeout(timer);
      const bound = Math.max(1, Math.ceil(Math.min(timeoutMs, totalTimeoutMs - (performance.now() - started))));
      timer = arm(bound);
      try {
        return { kept: response, text: await response.text() };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!response.ok) throw httpError(response.status, response.statusText, undefined, info, (loaded as Loaded).schema.ProblemBody);
        throw bodyFailure(info, timedOut, bound, error);
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", forward);
    }
  }

  /** One call with its retries; resolves to the status and the body text. */
  async function request(method: "GET" | "POST" | "PUT", path: string, call: AnnotationsCallOptions, json?: unknown) {
    const { signal } = call;
    signal?.throwIfAborted();
    const token = await tokenFor(call, method, path);
    const { ky } = loaded ?? (await load());
    const info = { method, path, attempts: 0 };
    // Every attempt passes through here: it counts them and logs one line each.
    const countingFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const attempt = ++info.attempts;
      const started = performance.now();
      try {
        const response = await baseFetch(input, init);
        logger?.debug({ method, path, status: response.status, durationMs: Math.round(performance.now() - started), attempt }, "annotations request");
        return response;
      } catch (error) {
        logger?.debug({ method, path, error: (error as Error).name, durationMs: Math.round(performance.now() - started), attempt }, "annotations request failed");
        throw error;
      }
    };
    const started = performance.now();
    const headers: Record<string, string> = { "user-agent": userAgent, accept: "application/json", authorization: `Bearer ${token}` };
    if (json !== undefined) headers["content-type"] = "application/json";
    const init = { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) };
    const first = await firstAttempt(base + path.slice(1), init, signal, countingFetch, info);
    if ("kept" in first) {
      const { kept, text } = first;
      if (!kept.ok) throw httpError(kept.status, kept.statusText, text, Object.freeze({ ...info }), (loaded as Loaded).schema.ProblemBody);
      return { status: kept.status, text, info: Object.freeze({ ...info }) };
    }
    if ("error" in first && (retry.retries === 0 || !isRetryableFailure(first.error))) {
      throw firstAttemptError(first.error, Object.freeze({ ...info }));
    }
    // ky takes it from here: its first "attempt" is the one made above, replayed, so that its
    // policy (backoff, Retry-After, the deadline) decides the wait before the next.
    let replayed = false;
    const replayingFetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      if (replayed) return countingFetch(input, init);
      replayed = true;
      if ("retry" in first) return Promise.resolve(first.retry);
      // A timed-out first attempt is retried as ky retries a timeout: like a network error.
      const error = first.error as Error;
      return Promise.reject(isRawNetworkError(error) ? error : Object.assign(new TypeError("fetch failed"), { cause: error }));
    };
    api ??= createApi(ky.default);
    let response: Response;
    try {
      response = await api(path.slice(1), {
        method,
        json,
        signal,
        headers: { authorization: `Bearer ${token}` },
        totalTimeout: Math.max(1, Math.floor(totalTimeoutMs - (performance.now() - started))),
        fetch: replayingFetch,
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw await mapError(ky, error, Object.freeze({ ...info }), timeoutMs, (loaded as Loaded).schema.ProblemBody);
    }
    // ky's timeouts end with the headers: the body is read under the same bounds here.
    const bound = Math.max(1, Math.ceil(Math.min(timeoutMs, totalTimeoutMs - (performance.now() - started))));
    try {
      return { status: response.status, text: await readBody(response, bound, signal), info: Object.freeze({ ...info }) };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw bodyFailure(Object.freeze({ ...info }), (error as Error)?.name === "TimeoutError", bound, error);
    }
  }

  /** The error of a first attempt that got no answer, when there are no retries. */
  function firstAttemptError(error: unknown, info: AnnotationsCallInfo): unknown {
    if ((error as Error)?.name === "TimeoutError") return noAnswerInTime(info, timeoutMs);
    if (isRawNetworkError(error)) return unreachable(info, error);
    return error;
  }

  function parseRecord(text: string, info: AnnotationsCallInfo): MediaRecord {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AnnotationsResponseError(info, "the response body is not JSON");
    }
    // Loaded by the request that brought the text.
    const parsed = (loaded as Loaded).schema.MediaRecord.safeParse(camelCaseKeys(body));
    if (!parsed.success) {
      throw new AnnotationsResponseError(info, "the response body is not a media record", parsed.error.issues);
    }
    return parsed.data;
  }

  const media: AnnotationsClient["media"] = {
    async create(record, call = {}) {
      const sent: MediaRecord = {
        id: normalizeMediaId(record.id),
        name: record.name,
        path: record.path,
        mediaType: record.mediaType,
        mediaStatus: record.mediaStatus ?? MediaStatus.New,
        userId: record.userId,
      };
      try {
        const { text, info } = await request("POST", "/api/media", call, toWireRecord(sent));
        return text.trim() === "" ? sent : parseRecord(text, info);
      } catch (error) {
        // Content-derived IDs make POST safe to retry: a 409 on a retry may be our first
        // attempt, and is when the record holds what we sent; else another upload made it.
        if (error instanceof MediaConflictError && error.attempts > 1) {
          const existing = await media.get(sent.id, call);
          if (existing.userId === sent.userId && existing.path === sent.path && existing.name === sent.name) return existing;
        }
        throw error;
      }
    },
    async createOrGet(record, call = {}) {
      try {
        return { record: await media.create(record, call), created: true };
      } catch (error) {
        if (error instanceof MediaConflictError) return { record: await media.get(record.id, call), created: false };
        throw error;
      }
    },
    async get(id, call = {}) {
      const { text, info } = await request("GET", `/api/media/${normalizeMediaId(id)}`, call);
      return parseRecord(text, info);
    },
    async updateStatus(id, status, call = {}) {
      if (!writableStatuses.has(status)) {
        throw new TypeError(`Expected \`status\` to be one of MediaStatus (1, 2, 3 or 6), got ${String(status)}.`);
      }
      await request("PUT", `/api/media/${normalizeMediaId(id)}/status`, call, { MediaStatus: status });
    },
  };
  return Object.freeze({ media: Object.freeze(media) });
}
