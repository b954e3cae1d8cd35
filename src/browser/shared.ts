// What the helpers of media-intake/browser share: the answer types of the service, option checks,
// URLs resolved as a page resolves them, abortable waits. Nothing of Node here.
import type { MediaId } from "../media-id/format.ts";

/**
 * The media of an answer: the record's fields as the service sends them (JSON), the ID always.
 * An answer about another user's record may leave fields out (its owner, say).
 */
export interface UploadedMedia {
  id: MediaId;
  name?: string;
  path?: string;
  mediaType?: number;
  mediaStatus?: number;
  userId?: string;
  /** `false` when the record existed already (a re-upload, or the content of someone else). */
  created?: boolean;
  /** `true` only when this upload's bytes were kept as a new file. */
  fileCreated?: boolean;
  size?: number;
  [field: string]: unknown;
}

/** Where detection stands, in an answer that came before its end (a 202, or a tus finish). */
export interface DetectionProgress {
  jobId?: string;
  /** `"waiting"`, `"active"`, `"completed"` or `"failed"`. */
  state?: string;
  /** Where to read how it goes on (`GET`, with the token): relative to the service. */
  poll?: string;
  detections?: unknown[];
  error?: { code?: string; message?: string };
  [field: string]: unknown;
}

/**
 * The service's answer to an upload (multipart `POST /detect`, the tus finish, a verified
 * possession answer) and to a poll: the media, then the detections or where detection stands.
 */
export interface UploadAnswer {
  media: UploadedMedia;
  detections?: unknown[];
  detection?: DetectionProgress;
  [field: string]: unknown;
}

/** Throws a TypeError for an option not in `known`, as computeMediaId does. */
export function rejectUnknown(options: object, known: readonly string[], of: string): void {
  const unknown = Object.keys(options).find((key) => !known.includes(key));
  if (unknown !== undefined) throw new TypeError(`${of}: unknown option ${JSON.stringify(unknown)}; the options are ${known.map((name) => `\`${name}\``).join(", ")}.`);
}

/** Throws a TypeError unless `value` is a non-empty string. */
export function requireString(value: unknown, name: string, of: string): string {
  if (typeof value !== "string" || value === "") throw new TypeError(`${of}: \`${name}\` must be a non-empty string, got ${describe(value)}.`);
  return value;
}

/** The name an option gives, else the File's, else a TypeError (the service needs a name for the type). */
export function nameOf(file: Blob & { name?: string }, name: string | undefined, of: string): string {
  const chosen = name ?? (typeof file.name === "string" && file.name !== "" ? file.name : undefined);
  if (chosen === undefined) throw new TypeError(`${of}: a Blob has no name; pass \`name\` (its extension tells the service the media type).`);
  return requireString(chosen, "name", of);
}

/** `url` made absolute against the page (`location.href`) when there is one; else as given. */
export function absoluteUrl(url: string, base?: string): string {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  try {
    return new URL(url, base ?? page).href;
  } catch {
    return url;
  }
}

/** A short description of a value, for messages: never a whole object. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ?? "an object";
}

/** Settles as `promise` does, or rejects with `signal.reason` as soon as `signal` aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Resolves after `ms`, or rejects with `signal.reason` as soon as it aborts. */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return untilAborted(waited, signal).finally(() => clearTimeout(timer));
}

/** A `DOMException` named AbortError, as `fetch` rejects with: what a cancelled upload rejects with. */
export function abortError(message: string): Error {
  return new DOMException(message, "AbortError");
}
