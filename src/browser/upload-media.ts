// uploadMedia: the whole client flow for one file, as a page shows it in a row: its media ID, the
// possession check (the upload skipped when the service has the bytes), the resumable upload,
// then detection followed to its end.
import type { MediaId } from "../media-id/format.ts";
import { followDetection } from "./detection.ts";
import { computeMediaId } from "./media-id.ts";
import { skipUploadIfStored } from "./possession.ts";
import { type DetectionStatusUnknownError, UploadRequestError } from "./request-error.ts";
import { type ResumableUpload, uploadResumable } from "./resumable.ts";
import { abortError, absoluteUrl, describe, nameOf, rejectUnknown, requireString, type UploadAnswer } from "./shared.ts";
import type { TusUploadClass, TusUrlStorage } from "./tus-client.ts";

/** Where an upload of {@link uploadMedia} stands. */
export type UploadState = "hashing" | "checking" | "uploading" | "paused" | "processing" | "done" | "error";

/** Options of {@link uploadMedia}. */
export interface UploadMediaOptions {
  /** The tus endpoint (`"/files"`, or an absolute URL). */
  endpoint: string;
  /** The possession endpoint (`"/possession"`): with it, an upload the service already has is skipped. */
  possessionUrl?: string;
  /** The caller's token, sent as `Authorization: Bearer` on every request. */
  token: string;
  /** The file's name (its extension tells the type); default the File's own name. */
  name?: string;
  /** The file's media ID when known already; else computed first (state "hashing"). */
  mediaId?: MediaId;
  /** tus-js-client's `Upload` class; default `import("tus-js-client")`. */
  Upload?: TusUploadClass;
  /** Bytes per PATCH; default 64 MiB. */
  chunkSize?: number;
  /** Delays of the upload's retries, in ms; default [0, 1000, 3000, 10000, 30000]. */
  retryDelays?: number[];
  /** Where the URLs of unfinished uploads are kept; default tus-js-client's (`localStorage` in a browser). */
  urlStorage?: TusUrlStorage;
  /** The wait between detection polls, in ms; default 1000. */
  intervalMs?: number;
  /** The waits before a detection poll again after one went unanswered (followDetection's `retryDelays`); default about 2 min. */
  pollRetryDelays?: readonly number[];
  /** Each state, as it changes. */
  onState?(state: UploadState): void;
  /** Bytes sent so far, of `total` (uploading only). */
  onProgress?(sent: number, total: number): void;
  /** Each answer of a detection poll. */
  onUpdate?(body: UploadAnswer): void;
  /** Stops everything; `done` rejects with `signal.reason` (an upload under way stays resumable). */
  signal?: AbortSignal;
  /** The fetch of the possession check and the polls; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * The final answer of {@link uploadMedia}: the service's, whether the upload was skipped, and
 * `detections` wherever the service put them (the answer's own, or the polled job's).
 */
export type UploadMediaAnswer = UploadAnswer & { skipped: boolean };

/** An upload of {@link uploadMedia} under way. */
export interface MediaUpload {
  /** The file's media ID, once hashed. */
  mediaId: Promise<MediaId>;
  /** Resolves with the final answer (detection ended, a failed run included); rejects as the step that failed does. */
  done: Promise<UploadMediaAnswer>;
  /** Pauses the upload (state "paused"); called sooner, the upload starts paused. */
  pause(): void;
  /** Goes on after `pause()`, from the server's offset. */
  resume(): void;
  /**
   * Stops, removing a started upload at the server; `done` rejects with an AbortError (state
   * "error"). After `done` rejected (a dropped link, offline), it still removes the partial upload
   * at the server, so it is not resumed later; it rejects when the server cannot be reached (call
   * it again once it can). After `done` resolved, it does nothing.
   */
  cancel(): Promise<void>;
}

/** The answers of the possession route that mean "no check now": the file is uploaded instead. */
const UNCHECKED = [404, 405, 429, 501];

const KNOWN = ["endpoint", "possessionUrl", "token", "name", "mediaId", "Upload", "chunkSize", "retryDelays", "urlStorage", "intervalMs", "pollRetryDelays", "onState", "onProgress", "onUpdate", "signal", "fetch"];

/**
 * Uploads one file the way a page wants it, reporting each state: "hashing" (its media ID),
 * "checking" (with `possessionUrl`: {@link skipUploadIfStored}; a service without the route, 404,
 * 405 or 501, or past its limit of challenges, 429, is uploaded to; a 401, 413 or 415 fails it),
 * "uploading" and "paused" ({@link uploadResumable}), "processing"
 * ({@link followDetection}, when the answer says where to poll), then "done" or "error". A
 * skipped upload goes from "checking" to "processing" or "done".
 *
 * @throws {TypeError} (at once) a missing option, a Blob without `name`, an unknown option. `done`
 *   rejects with the failing step's error: {@link UploadRequestError} (`status`, plain-text
 *   `text`), {@link DetectionStatusUnknownError} (stored, its detection not known: the polls went
 *   unanswered), `MediaReadError`, a `MissingPeerDependencyError`, `signal.reason`, or an AbortError
 *   after `cancel()`.
 * @example
 * import { uploadMedia } from "media-intake/browser";
 * const upload = uploadMedia(file, { endpoint: "/files", possessionUrl: "/possession", token, Upload: tus.Upload, onState: (state) => (row.dataset.state = state) });
 * row.dataset.mediaId = await upload.mediaId;
 * const answer = await upload.done; // { media, detections, skipped: false } (and `detection` when it was polled)
 */
export function uploadMedia(file: Blob & { name?: string }, options: UploadMediaOptions): MediaUpload {
  const of = "uploadMedia";
  rejectUnknown(options ?? {}, KNOWN, of);
  const endpoint = requireString(options?.endpoint, "endpoint", of);
  const token = requireString(options.token, "token", of);
  const possessionUrl = options.possessionUrl === undefined ? undefined : requireString(options.possessionUrl, "possessionUrl", of);
  if (!(file instanceof Blob)) throw new TypeError(`${of}: expected a Blob or a File, got ${describe(file)}.`);
  const name = nameOf(file, options.name, of);
  const { signal, onState, fetch } = options;

  const controller = new AbortController();
  const forward = () => controller.abort(signal?.reason);
  if (signal?.aborted) forward();
  else signal?.addEventListener("abort", forward, { once: true });
  const stop = controller.signal;

  let state: UploadState | undefined;
  const setState = (next: UploadState) => {
    if (state === next) return;
    state = next;
    onState?.(next);
  };
  let resumable: ResumableUpload | undefined;
  let paused = false;
  let settled = false;
  let succeeded = false;
  let resolveId!: (id: MediaId) => void;
  let rejectId!: (error: unknown) => void;
  const mediaId = new Promise<MediaId>((resolve, reject) => {
    resolveId = resolve;
    rejectId = reject;
  });
  mediaId.catch(() => {}); // also rejects `done`: not an unhandled rejection of its own

  const run = async (): Promise<UploadMediaAnswer> => {
    setState("hashing");
    const id = options.mediaId ?? (await computeMediaId(file, { signal: stop }));
    resolveId(id);
    let answer: UploadAnswer | undefined;
    let baseUrl = absoluteUrl(endpoint);
    if (possessionUrl !== undefined) {
      setState("checking");
      const check = await skipUploadIfStored(file, { url: possessionUrl, token, mediaId: id, name, signal: stop, ...(fetch ? { fetch } : {}) }).catch((error: unknown) => {
        // A check the service cannot make now, for reasons neither the caller's nor the file's: a
        // service without the route (404, 405, 501), or past its limit of challenges (429, "try
        // again in 59 s, or upload the file"). The upload goes, as before the check existed.
        if (error instanceof UploadRequestError && UNCHECKED.includes(error.status)) return { skipped: false as const };
        throw error;
      });
      if (check.skipped) {
        answer = check.body;
        baseUrl = absoluteUrl(possessionUrl);
      }
    }
    const skipped = answer !== undefined;
    if (answer === undefined) {
      stop.throwIfAborted();
      setState(paused ? "paused" : "uploading");
      resumable = uploadResumable(file, {
        endpoint,
        token,
        mediaId: id,
        name,
        signal: stop,
        ...pick(options, ["Upload", "chunkSize", "retryDelays", "urlStorage", "onProgress"]),
      });
      if (paused) resumable.pause();
      answer = (await resumable.done).body;
    }
    if (typeof answer.detection?.poll === "string" && !["completed", "failed"].includes(String(answer.detection.state))) {
      setState("processing");
      const retryDelays = options.pollRetryDelays;
      answer = await followDetection(answer, { token, baseUrl, signal: stop, ...(retryDelays ? { retryDelays } : {}), ...pick(options, ["intervalMs", "onUpdate", "fetch"]) });
    }
    // One place for the detections, however they came: in the answer, or in the polled job's.
    const detections = answer.detections ?? answer.detection?.detections;
    return { ...answer, ...(detections === undefined ? {} : { detections }), skipped };
  };

  // From the next microtask: `onState` never runs before this call has returned its handle.
  const done = Promise.resolve()
    .then(run)
    .then(
    (answer) => {
      settled = true;
      succeeded = true;
      signal?.removeEventListener("abort", forward);
      setState("done");
      return answer;
    },
    (error: unknown) => {
      settled = true;
      signal?.removeEventListener("abort", forward);
      rejectId(error);
      setState("error");
      throw error;
    },
  );

  return {
    mediaId,
    done,
    pause() {
      if (settled || paused) return;
      paused = true;
      if (resumable && state === "uploading") {
        resumable.pause();
        setState("paused");
      }
    },
    resume() {
      if (settled || !paused) return;
      paused = false;
      if (resumable && state === "paused") {
        resumable.resume();
        setState("uploading");
      }
    },
    async cancel() {
      if (succeeded) return;
      // Ended by an error (a dropped link, offline): the partial upload is still at the server,
      // and kept for a resume; a cancel removes it (a tus DELETE), or rejects while unreachable.
      if (settled) return resumable?.cancel();
      done.catch(() => {}); // asked for: no unhandled rejection when the caller only awaits cancel()
      controller.abort(abortError("The upload was cancelled."));
      await resumable?.cancel();
      await done.catch(() => {});
    },
  };
}

/** The options of `names` that are set. */
function pick<T extends object, K extends keyof T>(options: T, names: readonly K[]): Pick<T, K> {
  return Object.fromEntries(names.filter((key) => options[key] !== undefined).map((key) => [key, options[key]])) as Pick<T, K>;
}
