// uploadResumable: a tus upload (media-intake/tus's endpoint) with tus-js-client, keyed by the
// media ID and the file's date, so that a reload, or a renamed copy of the same file, resumes at
// the server's offset, and an edited file of the same media ID does not.
import { isMediaIntakeError } from "../errors/index.ts";
import type { MediaId } from "../media-id/format.ts";
import { computeMediaId } from "./media-id.ts";
import { parseJson } from "./http.ts";
import { refusal, UploadRequestError } from "./request-error.ts";
import { abortError, absoluteUrl, describe, nameOf, rejectUnknown, requireString, type UploadAnswer } from "./shared.ts";
import { blobReader, loadTusUpload, type TusHttpResponse, type TusUpload, type TusUploadClass, type TusUploadOptions, type TusUrlStorage, tusReadsBlobs } from "./tus-client.ts";

export type { TusHttpResponse, TusPreviousUpload, TusUpload, TusUploadClass, TusUploadOptions, TusUrlStorage, TusFileReader } from "./tus-client.ts";

/** The chunk of a PATCH, as docs/tus.md advises: a proxy in front must take bodies this large. */
export const DEFAULT_CHUNK_SIZE = 64 * 2 ** 20;
/** When to try again after a dropped link or a 5xx, in ms: after that, `done` rejects. */
export const DEFAULT_RETRY_DELAYS: readonly number[] = [0, 1_000, 3_000, 10_000, 30_000];

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
 * (409 `MEDIA_ID_COLLISION`, 401, 403, 413, 415). Metadata `{ filename, mediaId }`, the token on
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
  let resolveDone!: (answer: ResumableAnswer) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<ResumableAnswer>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const end = (error: unknown, answer?: ResumableAnswer) => {
    if (ended) return;
    ended = true;
    signal?.removeEventListener("abort", onAbort);
    succeeded = answer !== undefined;
    if (answer) resolveDone(answer);
    else rejectDone(error);
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
      onShouldRetry: shouldRetry,
      fingerprint: async () => fingerprintOf(file, mediaId, endpoint),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      ...(urlStorage ? { urlStorage } : {}),
      ...(tusReadsBlobs() ? {} : { fileReader: blobReader }),
      onProgress: (sent, total) => onProgress?.(sent, total),
      onSuccess: ({ lastResponse }) => {
        try {
          end(undefined, finishAnswer(lastResponse));
        } catch (error) {
          end(error);
        }
      },
      onError: (error) => end(tusError(error, name, token)),
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
function shouldRetry(error: { originalResponse?: TusHttpResponse | null }): boolean {
  const response = error?.originalResponse ?? undefined;
  const status = response?.getStatus() ?? 0;
  const online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false;
  if (status >= 400 && status < 500 && status !== 409 && status !== 423) return false;
  if (status === 409) {
    const code = (parseJson(response?.getBody() ?? "") as { error?: { code?: unknown } } | undefined)?.error?.code;
    if (typeof code === "string" && code !== OFFSET_CONFLICT) return false;
  }
  return online;
}

/** The finish answer: the JSON body, or (a HEAD of an upload the server finished before) the `Media-Id` header alone. */
function finishAnswer(response: TusHttpResponse): ResumableAnswer {
  const status = response.getStatus();
  const body = parseJson(response.getBody() ?? "") as UploadAnswer | undefined;
  if (typeof body?.media?.id === "string") return { status, body };
  const id = response.getHeader("Media-Id");
  if (id) return { status, body: { media: { id } } };
  throw new UploadRequestError(status, "The service finished the upload without saying which media it became; try again later.");
}

/** tus-js-client's error as ours: a refused or unanswered request as an UploadRequestError, a read failure as is. */
function tusError(error: unknown, name: string, token: string): unknown {
  const detailed = error as { originalRequest?: unknown; originalResponse?: TusHttpResponse | null; causingError?: unknown };
  if (isMediaIntakeError(detailed?.causingError)) return detailed.causingError;
  if (!detailed?.originalRequest) return error;
  const response = detailed.originalResponse ?? undefined;
  return refusal({ status: response?.getStatus() ?? 0, body: response?.getBody(), name, token, cause: error });
}
