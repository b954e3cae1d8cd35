// followDetection: an upload's answer that came before detection ended (a 202 of `POST /detect`,
// a tus finish, a verified possession answer) says where to poll; this polls there until the run
// has completed or failed.
import { parseJson, requestJson } from "./http.ts";
import { DetectionStatusUnknownError, refusal, UploadRequestError } from "./request-error.ts";
import { absoluteUrl, delay, rejectUnknown, requireString, type UploadAnswer } from "./shared.ts";

/** The states after which a detection run changes no more. */
const FINAL_STATES: ReadonlySet<string> = new Set(["completed", "failed"]);
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
/** The waits before each poll again after a poll went unanswered (no connection, 5xx, 429), in ms: about 2 min in all. */
export const DEFAULT_POLL_RETRY_DELAYS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000, 30_000, 30_000];
/** The longest `Retry-After` waited, in ms: a longer one counts as this. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Options of {@link followDetection}. */
export interface FollowDetectionOptions {
  /** The caller's token, sent as `Authorization: Bearer` on each poll. */
  token: string;
  /** What a relative `poll` URL is relative to; default the page (`location.href`). */
  baseUrl?: string;
  /** The wait before each poll, in ms; default 1000. */
  intervalMs?: number;
  /**
   * The waits before each poll again after one went unanswered (no connection, a 5xx, a 429), in
   * ms, a `Retry-After` longer than the wait taken instead (up to 60 s); after the last,
   * {@link DetectionStatusUnknownError}. A poll answered resets them. Default
   * {@link DEFAULT_POLL_RETRY_DELAYS} (about 2 min); `[]` never retries.
   */
  retryDelays?: readonly number[];
  /** Stops the polling, a wait included; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Each answer of a poll, the last included. */
  onUpdate?(body: UploadAnswer): void;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * Follows an upload's answer to the end of its detection: when `answer.detection.poll` is set and
 * its state is not final, `GET`s that URL (after `intervalMs`, then again) until the answer's
 * `detection.state` is `"completed"` or `"failed"`, and resolves with that last answer
 * (`{ media, detection: { jobId, state, detections?, error? } }`). A failed run resolves too: its
 * `detection.error` says why. A 202 with a `Location` moves the polling there. An answer
 * without a poll URL, or already final, resolves at once with itself. A poll that got no answer,
 * a 5xx (a 503 with `Retry-After` too) or a 429 is made again after `retryDelays`: an outage of
 * the service rides through.
 *
 * @throws {DetectionStatusUnknownError} (an UploadRequestError) the polls went unanswered through
 *   all `retryDelays`: its `answer` goes on later.
 * @throws {UploadRequestError} a poll answered 404 (the job is unknown, expired, or another
 *   user's), 401, or anything but 200/202 and the above: `status` and a plain-text `text`; also a
 *   poll answer without `detection.state` (polling on would never end).
 * @throws {TypeError} a relative poll URL with no page nor `baseUrl`, or an unknown option.
 * @example
 * import { followDetection } from "media-intake/browser";
 * const answer = await (await fetch("/detect", { method: "POST", body: form, headers })).json();
 * const final = await followDetection(answer, { token, onUpdate: (body) => (status.textContent = body.detection?.state ?? "") });
 * console.log(final.detection?.detections);
 */
export async function followDetection(answer: UploadAnswer, options: FollowDetectionOptions): Promise<UploadAnswer> {
  const of = "followDetection";
  rejectUnknown(options ?? {}, ["token", "baseUrl", "intervalMs", "retryDelays", "signal", "onUpdate", "fetch"], of);
  const token = requireString(options?.token, "token", of);
  const { signal, onUpdate, fetch } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!(intervalMs >= 0) || !Number.isFinite(intervalMs)) throw new TypeError(`${of}: \`intervalMs\` must be a number of ms (0 or more), got ${String(intervalMs)}.`);
  signal?.throwIfAborted();
  const poll = answer?.detection?.poll;
  if (typeof poll !== "string" || poll === "" || isFinal(answer)) return answer;
  let url = absoluteUrl(poll, options.baseUrl === undefined ? undefined : absoluteUrl(options.baseUrl));
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) throw new TypeError(`${of}: the poll URL ${JSON.stringify(poll)} is relative, and there is no page to resolve it against: pass \`baseUrl\`.`);
  const retryDelays = options.retryDelays ?? DEFAULT_POLL_RETRY_DELAYS;
  if (!Array.isArray(retryDelays) || !retryDelays.every((ms) => ms >= 0 && Number.isFinite(ms))) throw new TypeError(`${of}: \`retryDelays\` must be an array of ms (0 or more).`);
  let last = answer;
  let wait = intervalMs;
  let retries = 0;
  for (;;) {
    await delay(wait, signal);
    wait = intervalMs;
    const polled = await requestJson({ method: "GET", url, token, signal, fetch }).catch((error: unknown) => {
      if (error instanceof UploadRequestError && error.status === 0) return error;
      throw error;
    });
    if (polled instanceof UploadRequestError || (polled.status !== 200 && polled.status !== 202)) {
      const failed = polled instanceof UploadRequestError ? polled : refusal({ status: polled.status, body: polled.text, token });
      if (!(failed.status === 0 || failed.status === 429 || failed.status >= 500)) throw failed;
      // The stored answer, its poll URL absolute, for a later call to go on from.
      if (retries >= retryDelays.length) throw new DetectionStatusUnknownError(failed, { ...last, detection: { ...last.detection, poll: url } });
      const after = polled instanceof UploadRequestError ? undefined : retryAfterMs(polled.headers.get("retry-after"));
      wait = Math.max(retryDelays[retries] ?? 0, after ?? 0);
      retries += 1;
      continue;
    }
    retries = 0;
    const location = polled.status === 202 ? polled.headers.get("location") : null;
    if (location) url = new URL(location, polled.url).href;
    const body = parseJson(polled.text) as UploadAnswer | undefined;
    // Polling on for an answer that never says a state would never end: an answer without one is an error.
    if (typeof body?.detection?.state !== "string") {
      throw new UploadRequestError(polled.status, "The service answered the poll without the state of the detection; try again later.");
    }
    last = body;
    onUpdate?.(last);
    if (isFinal(last)) return last;
  }
}

/** A `Retry-After` (seconds, or an HTTP date) in ms, at most {@link MAX_RETRY_AFTER_MS}; undefined without a valid one. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = /^\d+$/.test(header.trim()) ? Number(header.trim()) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_MS) : undefined;
}

function isFinal(answer: UploadAnswer): boolean {
  const state = answer?.detection?.state;
  return typeof state === "string" && FINAL_STATES.has(state);
}
