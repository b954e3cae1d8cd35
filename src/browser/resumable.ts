// uploadResumable: a tus upload (media-intake/tus's endpoint) with tus-js-client, keyed by the
// media ID and the file's date, so that a reload, or a renamed copy of the same file, resumes at
// the server's offset, and an edited file of the same media ID does not.
import { isMediaIntakeError } from "../errors/index.ts";
import type { MediaId } from "../media-id/format.ts";
import { computeMediaId } from "./media-id.ts";
import { parseJson } from "./http.ts";
import { refusal, UploadRequestError } from "./request-error.ts";
import { abortError, absoluteUrl, delay, describe, nameOf, rejectUnknown, requireString, type UploadAnswer } from "./shared.ts";
import { blobReader, loadTusUpload, type TusHttpResponse, type TusUpload, type TusUploadClass, type TusUploadOptions, type TusUrlStorage, tusReadsBlobs } from "./tus-client.ts";

export type { TusHttpRequest, TusHttpResponse, TusPreviousUpload, TusUpload, TusUploadClass, TusUploadOptions, TusUrlStorage, TusFileReader } from "./tus-client.ts";

/** The chunk of a PATCH, as docs/tus.md advises: a proxy in front must take bodies this large. */
export const DEFAULT_CHUNK_SIZE = 64 * 2 ** 20;
/** When to try again after a dropped link or a 5xx, in ms: after that, `done` rejects. */
export const DEFAULT_RETRY_DELAYS: readonly number[] = [0, 1_000, 3_000, 10_000, 30_000];
/** The waits between the HEADs of an upload whose bytes are all in but whose finish the service has not answered yet, in ms: doubled from the first to the last (a `Retry-After` overrides them, up to the last). */
const FINISH_WAITS = { first: 1_000, longest: 30_000 };

/** Options of {@link uploadResumable}. */
export interface UploadResumableOptions {
  /** The tus endpoint (`"/files"`, or an absolute URL). */
  endpoint: string;
  /** The caller's token, sent as `Authorization: Bearer` on every request. */
  token: string;
  /** The file's media ID when known already; else computed here. It keys the resume, with the File's `lastModified`. */
  mediaId?: MediaId;
  /** The file's name (its extension tells the type); default the File's own name. */
  name?: string;
  /** tus-js-client's `Upload` class; default `import("tus-js-client")`. */
  Upload?: TusUploadClass;
  /** Bytes per PATCH; default 64 MiB. */
  chunkSize?: number;
  /** Delays of the retries after a dropped link or a 5xx, in ms; default [0, 1000, 3000, 10000, 30000]. */
  retryDelays?: number[];
  /** Where the URLs of unfinished uploads are kept; default tus-js-client's (`localStorage` in a browser, none in Node). */
  urlStorage?: TusUrlStorage;
  /** Bytes sent so far, of `total`. */
  onProgress?(sent: number, total: number): void;
  /** Stops the upload (the server keeps what it has: a later call resumes); `done` rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** The finish answer of a resumable upload. */
export interface ResumableAnswer {
  /** 200 (or 201 for a creation that carried the whole file). */
  status: number;
  /** `{ media, ... }`: the media, and what the service added (detections, or where to poll). */
  body: UploadAnswer;
}

/** A running resumable upload. */
export interface ResumableUpload {
  /** Resolves with the finish answer; rejects with an {@link UploadRequestError}, the signal's reason, or an AbortError after `cancel()`. */
  done: Promise<ResumableAnswer>;
  /** Stops sending; the server keeps the bytes it has. */
  pause(): void;
  /** Goes on from the server's offset after `pause()`. */
  resume(): void;
  /** Stops, and removes the upload at the server (a tus DELETE); `done` rejects with an AbortError. */
  cancel(): Promise<void>;
}

/**
 * Uploads `file` to a tus endpoint (media-intake/tus) with tus-js-client, resumably. The upload is
 * keyed by `media-intake:<mediaId>:<lastModified>:<endpoint>` (a plain Blob, which has no date:
 * `media-intake:<mediaId>:<endpoint>`): a reload of the page, or a renamed copy of the same file
 * (the same date, as `mv` and `cp -p` keep it), resumes at the offset the server holds (the URL
 * kept in `localStorage`, and removed once the upload finishes), while an edited file of the same
 * media ID (which samples only 3 KiB) starts a new upload. Retried: a dropped link, a 5xx, a 423
 * and tus's own 409 (an offset conflict); not a refusal that carries the service's JSON error
 * (409 `MEDIA_ID_COLLISION`, 401, 403, 413, 415). Never started over: a HEAD that answers 5xx is
 * retried (or waited out), not taken as a lost upload to create again. Once every byte is in (or
 * the answer is 503 `MEDIA_RECORD_PENDING`), a 5xx is the service's finish still to come: the
 * upload's URL is asked (HEAD, after its `Retry-After`, else 1 s doubling up to 30 s) until it
 * answers complete with `Media-Id`, for as long as it takes (pause, cancel or the signal stop it),
 * and `done` resolves with `{ media: { id }, detection: { jobId: id, poll: "/detections/<id>" } }`.
 * Metadata `{ filename, mediaId }`, the token on
 * every request, and the finish answer (`{ media, ... }`) resolves `done`. tus-js-client is an
 * optional peer: pass its `Upload` class, or have it installed for `import("tus-js-client")`.
 *
 * @throws {TypeError} (at once) a missing option, a Blob without `name`, an unknown option.
 *   `done` rejects with: {@link UploadRequestError} (`status`, plain-text `text`: 401, 413 with
 *   the limit, 415 with the type, 5xx after the retries, 0 no answer); a `MissingPeerDependencyError`
 *   without tus-js-client; {@link MediaReadError} the file cannot be read; `signal.reason`; an
 *   AbortError after `cancel()`.
 * @example
 * import { uploadResumable } from "media-intake/browser";
 * import { Upload } from "tus-js-client";
 * const upload = uploadResumable(file, { endpoint: "/files", token, Upload, onProgress: (sent, total) => bar.value = sent / total });
 * pauseButton.onclick = () => upload.pause();
 * const { body } = await upload.done; // { media: { id, mediaStatus, ... }, detection: { poll } }
 */
export function uploadResumable(file: Blob & { name?: string }, options: UploadResumableOptions): ResumableUpload {
  const of = "uploadResumable";
  rejectUnknown(options ?? {}, ["endpoint", "token", "mediaId", "name", "Upload", "chunkSize", "retryDelays", "urlStorage", "onProgress", "signal"], of);
  const endpoint = absoluteUrl(requireString(options?.endpoint, "endpoint", of));
  const token = requireString(options.token, "token", of);
  if (!(file instanceof Blob)) throw new TypeError(`${of}: expected a Blob or a File, got ${describe(file)}.`);
  const name = nameOf(file, options.name, of);
  const { signal, onProgress, urlStorage } = options;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!(chunkSize > 0)) throw new TypeError(`${of}: \`chunkSize\` must be a positive number of bytes, got ${describe(chunkSize)}.`);
  const retryDelays = [...(options.retryDelays ?? DEFAULT_RETRY_DELAYS)];

  let upload: TusUpload | undefined;
  let paused = false;
  let ended = false;
  let succeeded = false;
  // Every byte sent at least once in this call (the last chunk's body went out whole).
  let sentAll = false;
  // The HEADs that wait for the service to finish an upload whose bytes are in: stopped by pause, cancel, the signal.
  let waiting: AbortController | undefined;
  let resolveDone!: (answer: ResumableAnswer) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<ResumableAnswer>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const end = (error: unknown, answer?: ResumableAnswer) => {
    if (ended) return;
    ended = true;
    waiting?.abort();
    signal?.removeEventListener("abort", onAbort);
    succeeded = answer !== undefined;
    if (answer) resolveDone(answer);
    else rejectDone(error);
  };
  /** A 5xx that comes once the bytes are in, or says the record is pending: the service's to finish, never a reason to upload again. */
  const awaitsFinish = (error: unknown) => {
    const status = responseOf(error)?.getStatus() ?? 0;
    return status >= 500 && (sentAll || codeOf(responseOf(error)) === "MEDIA_RECORD_PENDING");
  };
  /**
   * Asks the upload's URL (HEAD) until the service answers it: then tus-js-client takes it up again
   * (complete with `Media-Id`: its success resolves `done`; short of the end: it sends the rest
   * from the server's offset); a 5xx or no answer waits (its `Retry-After`, else doubling) and
   * asks again, for as long as it takes (pause, cancel and the signal stop it); a 4xx rejects.
   */
  const waitForFinish = async (url: string) => {
    const controller = new AbortController();
    waiting = controller;
    let wait = FINISH_WAITS.first;
    try {
      for (;;) {
        const head = await fetch(url, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` }, cache: "no-store", signal: controller.signal }).catch((error: unknown) => {
          if (controller.signal.aborted) throw error;
          return undefined;
        });
        let retryAfter = Number.NaN;
        if (head && head.status < 300) {
          // Answered: tus-js-client goes on from there (complete: its success, the URL kept for
          // the upload removed; short of the end: the rest of the bytes, from the server's offset).
          sentAll = head.headers.get("upload-offset") === head.headers.get("upload-length");
          upload?.start();
          return;
        }
        if (head && head.status < 500 && head.status !== 423) return end(refusal({ status: head.status, body: await head.text(), name, token }));
        if (head) retryAfter = Number(head.headers.get("retry-after")) * 1000;
        await delay(retryAfter >= 0 ? Math.min(retryAfter, FINISH_WAITS.longest) : wait, controller.signal);
        wait = Math.min(wait * 2, FINISH_WAITS.longest);
      }
    } catch (error) {
      // Stopped by pause, cancel or the signal: they settle `done` themselves.
      if (!controller.signal.aborted) end(error);
    } finally {
      if (waiting === controller) waiting = undefined;
    }
  };
  const onAbort = () => {
    end(signal?.reason);
    void upload?.abort(false);
  };

  const ready = (async () => {
    signal?.throwIfAborted();
    const [Upload, mediaId] = await Promise.all([loadTusUpload(options.Upload), options.mediaId ?? computeMediaId(file, signal ? { signal } : {})]);
    const tusOptions: TusUploadOptions = {
      endpoint,
      metadata: { filename: name, mediaId },
      headers: { authorization: `Bearer ${token}` },
      chunkSize,
      retryDelays,
      onShouldRetry: (error) => !awaitsFinish(error) && shouldRetry(error),
      // A HEAD that answers 5xx is no reason to start the upload over (tus-js-client would create a
      // new one and send every byte again): it becomes an error, retried as one (or waited out).
      onAfterResponse: (request, response) => {
        if (request.getMethod() === "HEAD" && response.getStatus() >= 500) throw new HeadNotAnswered(response);
      },
      fingerprint: async () => fingerprintOf(file, mediaId, endpoint),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      ...(urlStorage ? { urlStorage } : {}),
      ...(tusReadsBlobs() ? {} : { fileReader: blobReader }),
      onProgress: (sent, total) => {
        if (sent >= total) sentAll = true;
        onProgress?.(sent, total);
      },
      onSuccess: ({ lastResponse }) => {
        try {
          end(undefined, finishAnswer(lastResponse));
        } catch (error) {
          end(error);
        }
      },
      onError: (error) => {
        const url = upload?.url;
        if (url && !ended && !paused && awaitsFinish(error)) void waitForFinish(url);
        else end(tusError(error, name, token));
      },
    };
    const instance = new Upload(file, tusOptions);
    // The newest upload of these bytes to this endpoint, kept by an earlier page or call.
    const previous = (await instance.findPreviousUploads())
      .filter((kept) => kept.uploadUrl && (kept.size === null || kept.size === file.size))
      .sort((a, b) => (Date.parse(b.creationTime) || 0) - (Date.parse(a.creationTime) || 0))[0];
    if (previous) instance.resumeFromPreviousUpload(previous);
    return instance;
  })();
  ready.then(
    (instance) => {
      upload = instance;
      if (!ended && !paused) instance.start();
    },
    (error: unknown) => end(error),
  );
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });

  return {
    done,
    pause() {
      if (ended || paused) return;
      paused = true;
      waiting?.abort();
      void upload?.abort(false);
    },
    resume() {
      if (ended || !paused) return;
      paused = false;
      upload?.start();
    },
    async cancel() {
      if (succeeded) return;
      // Asked for: `done` rejecting is no unhandled rejection when the caller only awaits cancel().
      done.catch(() => {});
      end(abortError("The upload was cancelled."));
      const instance = await ready.catch(() => undefined);
      if (!instance) return;
      await instance.abort(true).catch((error: unknown) => {
        throw tusError(error, name, token);
      });
    },
  };
}

/**
 * The key of the upload's URL in tus-js-client's storage: the media ID and the File's date, not
 * tus-js-client's name + size + date, so the same file under another name resumes (a rename
 * keeps the date); not the media ID alone, which samples 3 KiB: an edited video of the same ID
 * (a newer date) would resume the other version's upload and be stored spliced from the two.
 */
function fingerprintOf(file: Blob, mediaId: string, endpoint: string): string {
  const lastModified = (file as Partial<File>).lastModified;
  return typeof lastModified === "number" && Number.isFinite(lastModified) ? `media-intake:${mediaId}:${lastModified}:${endpoint}` : `media-intake:${mediaId}:${endpoint}`;
}

/** The `error.code` of tus's own offset conflict (media-intake/tus answers it with a JSON body too). */
const OFFSET_CONFLICT = "UPLOAD_OFFSET_MISMATCH";

/**
 * Whether tus-js-client tries a failed request again: as by default (no answer, a 5xx, a 409 or a
 * 423; never another 4xx, nor while the browser is offline), except a 409 whose JSON error body
 * (`{ error: { code } }`) says it is not tus's offset conflict: a 409 `MEDIA_ID_COLLISION` is the
 * service's final word, and sending it again is sending the whole file again for the same 409.
 */
function shouldRetry(error: unknown): boolean {
  const response = responseOf(error);
  const status = response?.getStatus() ?? 0;
  const online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false;
  if (status >= 400 && status < 500 && status !== 409 && status !== 423) return false;
  if (status === 409) {
    const code = codeOf(response);
    if (typeof code === "string" && code !== OFFSET_CONFLICT) return false;
  }
  return online;
}

/** A HEAD's 5xx, thrown from `onAfterResponse` so that tus-js-client treats it as an error, not as an upload to create again. */
class HeadNotAnswered extends Error {
  readonly response: TusHttpResponse;
  constructor(response: TusHttpResponse) {
    super(`tus: the upload's HEAD answered ${response.getStatus()}`);
    this.name = "HeadNotAnswered";
    this.response = response;
  }
}

/** The response a tus-js-client error carries: its own, or the HEAD's of {@link HeadNotAnswered}. */
function responseOf(error: unknown): TusHttpResponse | undefined {
  const detailed = error as { originalResponse?: TusHttpResponse | null; causingError?: unknown } | undefined;
  if (detailed?.originalResponse) return detailed.originalResponse;
  return detailed?.causingError instanceof HeadNotAnswered ? detailed.causingError.response : undefined;
}

/** The `error.code` of a JSON error body. */
function codeOf(response: TusHttpResponse | undefined): unknown {
  return (parseJson(response?.getBody() ?? "") as { error?: { code?: unknown } } | undefined)?.error?.code;
}

/**
 * The answer of an upload the service finished without a body (a HEAD answers only `Media-Id`):
 * the media's ID, and where the service's detection is polled (`/detections/<id>`, as the tus
 * route of the Express example and docs/tus.md answer it: the job's ID is the media ID).
 */
function answerWithoutBody(id: string): UploadAnswer {
  return { media: { id }, detection: { jobId: id, poll: `/detections/${encodeURIComponent(id)}` } };
}

/** The finish answer: the JSON body, or (a HEAD of an upload the server finished before) the `Media-Id` header alone. */
function finishAnswer(response: TusHttpResponse): ResumableAnswer {
  const status = response.getStatus();
  const body = parseJson(response.getBody() ?? "") as UploadAnswer | undefined;
  if (typeof body?.media?.id === "string") return { status, body };
  const id = response.getHeader("Media-Id");
  if (id) return { status, body: answerWithoutBody(id) };
  throw new UploadRequestError(status, "The service finished the upload without saying which media it became; try again later.");
}

/** tus-js-client's error as ours: a refused or unanswered request as an UploadRequestError, a read failure as is. */
function tusError(error: unknown, name: string, token: string): unknown {
  const detailed = error as { originalRequest?: unknown; originalResponse?: TusHttpResponse | null; causingError?: unknown };
  if (isMediaIntakeError(detailed?.causingError)) return detailed.causingError;
  if (!detailed?.originalRequest) return error;
  const response = responseOf(error);
  return refusal({ status: response?.getStatus() ?? 0, body: response?.getBody(), name, token, cause: error });
}
