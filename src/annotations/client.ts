import type { KyInstance } from "ky";
import packageJson from "../../package.json" with { type: "json" };
import { type AnnotationsCallInfo, AnnotationsResponseError, AnnotationsUnavailableError, MediaConflictError } from "../errors/index.ts";
import { normalizeMediaId } from "../media-id/index.ts";
import { checkOptionsOf, maskErrorUrlPasswords, MINIMUM, raceAbort } from "../utils/index.ts";
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
  /**
   * Supplies the bearer token when neither the call nor `token` does (a service account, say).
   * Awaited within the call: an abort ends the wait, and so does `totalTimeoutMs`
   * (`AnnotationsUnavailableError`, nothing sent).
   */
  getToken?: () => string | Promise<string>;
  /** Per-attempt timeout. @default 10_000 */
  timeoutMs?: number;
  /** Deadline for a whole call: getToken, retries and waits included. @default 60_000 */
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
  /**
   * Aborts the call at any point (while the token or the client's modules are awaited, during a
   * request, while waiting to retry); it rejects with `signal.reason` at once.
   */
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


/**
 * Creates the client of the annotations service's Media API (docs/contract.md "Annotations service
 * API"), on ky. One client serves many users: pass each caller's token per call.
 *
 * Response bodies are read up to 1 MiB (a record is well under 1 KiB). A success with a longer
 * body fails as `AnnotationsUnavailableError` ("the response body is over 1 MiB"): what the
 * service did is not known. An error status with one keeps its own error, without the body.
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
  const check = checkOptionsOf("createAnnotationsClient");
  check.known(options, ["baseUrl", "token", "getToken", "timeoutMs", "totalTimeoutMs", "retry", "fetch", "logger", "userAgent"]);
  if (options?.retry) check.nested("retry").known(options.retry, ["retries", "baseDelayMs", "maxDelayMs", "maxRetryAfterMs"]);
  const prefix = check.url("baseUrl", options?.baseUrl, ["http:", "https:"]);
  check.func("getToken", options.getToken);
  check.func("fetch", options.fetch);
  const timeoutMs = check.number("timeoutMs", options.timeoutMs ?? defaults.timeoutMs, { min: MINIMUM.timeoutMs, unit: "ms" });
  const totalTimeoutMs = check.number("totalTimeoutMs", options.totalTimeoutMs ?? defaults.totalTimeoutMs, { min: MINIMUM.timeoutMs, unit: "ms" });
  const retry = options.retry === false ? { ...defaults.retry, retries: 0 } : { ...defaults.retry, ...options.retry };
  const checkRetry = check.nested("retry");
  checkRetry.integer("retries", retry.retries, { min: 0 });
  for (const name of ["baseDelayMs", "maxDelayMs", "maxRetryAfterMs"] as const) checkRetry.number(name, retry[name], { min: MINIMUM.delayMs, unit: "ms" });
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

  /** The bare token to send; a `TypeError` (never quoting it) when there is none or it is unusable. */
  function bareToken(token: unknown, method: string, path: string): string {
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

  /**
   * The token from getToken, and ky and the codec when not loaded yet: what has to be awaited
   * before the first attempt, which ends at an abort or at the call's deadline.
   */
  async function prepare(call: AnnotationsCallOptions, attempt: AttemptSignal, info: AnnotationsCallInfo): Promise<string> {
    let token: unknown = call.token ?? options.token;
    attempt.arm(totalTimeoutMs);
    let late = "getToken did not answer";
    try {
      if (token === undefined && options.getToken) token = await attempt.race(Promise.resolve(options.getToken()));
      late = "ky and zod did not load";
      if (!loaded) await attempt.race(load());
    } catch (error) {
      if (call.signal?.aborted) throw call.signal.reason;
      // Nothing was sent: unavailable all the same, so that callers wait and try again.
      if (attempt.timedOut) throw new AnnotationsUnavailableError(info, `${late} within the call's deadline (${totalTimeoutMs} ms)`);
      throw error;
    }
    return bareToken(token, info.method, info.path);
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
  async function firstAttempt(url: string, init: RequestInit, attempt: AttemptSignal, started: number, send: (input: string, init: RequestInit) => Promise<Response>, info: AnnotationsCallInfo): Promise<FirstOutcome> {
    const { caller } = attempt;
    attempt.arm(Math.max(1, Math.ceil(Math.min(timeoutMs, totalTimeoutMs - (performance.now() - started)))));
    let response: Response;
    try {
      response = await send(url, { ...init, signal: attempt.signal });
    } catch (error) {
      if (caller?.aborted) throw caller.reason;
      return { error };
    }
    if (!response.ok && retryable.has(response.status) && retry.retries > 0) return { retry: response };
    const bound = Math.max(1, Math.ceil(Math.min(timeoutMs, totalTimeoutMs - (performance.now() - started))));
    attempt.arm(bound);
    try {
      // The attempt's signal, given to fetch, ends the read too: at an abort or at `bound`.
      return { kept: response, text: await readBody(response) };
    } catch (error) {
      if (caller?.aborted) throw caller.reason;
      if (!response.ok) throw httpError(response.status, response.statusText, undefined, info, (loaded as Loaded).schema.ProblemBody, (init.headers as Record<string, string> | undefined)?.authorization);
      throw bodyFailure(info, attempt.timedOut, bound, error);
    }
  }

  // A password in `baseUrl` never shows in an error (fetch quotes a URL it refuses): masked.
  const hasPassword = new URL(prefix).password !== "";
  const request: typeof requestOnce = hasPassword ? (...args) => requestOnce(...args).catch((error: unknown) => Promise.reject(maskErrorUrlPasswords(error))) : requestOnce;

  /** One call with its retries; resolves to the status and the body text. */
  async function requestOnce(method: "GET" | "POST" | "PUT", path: string, call: AnnotationsCallOptions, json?: unknown) {
    const { signal } = call;
    signal?.throwIfAborted();
    const started = performance.now();
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
    // Made before the first await, so that an abort landing while the token or the modules are
    // awaited is seen (a listener added to a signal already aborted never runs).
    const attempt = new AttemptSignal(signal);
    let token: string;
    let first: FirstOutcome;
    try {
      const atHand = call.token ?? options.token;
      token = loaded && (atHand !== undefined || !options.getToken) ? bareToken(atHand, method, path) : await prepare(call, attempt, info);
      const headers: Record<string, string> = { "user-agent": userAgent, accept: "application/json", authorization: `Bearer ${token}` };
      if (json !== undefined) headers["content-type"] = "application/json";
      const init = { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) };
      first = await firstAttempt(base + path.slice(1), init, attempt, started, countingFetch, info);
    } finally {
      attempt.dispose();
    }
    const { ky, schema } = loaded as Loaded;
    if ("kept" in first) {
      const { kept, text } = first;
      if (!kept.ok) throw httpError(kept.status, kept.statusText, text, Object.freeze({ ...info }), schema.ProblemBody, token);
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
      throw await mapError(ky, error, Object.freeze({ ...info }), timeoutMs, schema.ProblemBody, token);
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

/**
 * The signal of a call until its first attempt's answer is read: the caller's abort, forwarded
 * (listened to from before the call's first await), and a timer that `arm` sets for what is
 * awaited next: the token, the headers, the body. One controller for all three, so the fast
 * path costs what one attempt's timeout did.
 */
class AttemptSignal {
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;
  /** Whether the timer, not the caller, aborted it. */
  timedOut = false;
  /** The caller's signal, if any. */
  readonly caller: AbortSignal | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(caller: AbortSignal | undefined) {
    this.caller = caller;
    caller?.addEventListener("abort", this, { once: true });
  }

  /** The caller's abort (an `EventListenerObject`: no closure per call). */
  handleEvent(): void {
    this.#controller.abort(this.caller?.reason);
  }

  /** Aborts with a `TimeoutError` after `ms`, replacing the timer set before. */
  arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.#controller.abort(new DOMException(`No answer within ${ms} ms`, "TimeoutError"));
    }, ms);
  }

  /** `promise`, or a rejection with the abort's reason as soon as the signal aborts. */
  race<T>(promise: Promise<T>): Promise<T> {
    return raceAbort(promise, this.signal);
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.caller?.removeEventListener("abort", this);
  }
}
