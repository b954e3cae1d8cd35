// The client's side of the possession check (docs/possession.md, docs/browser.md): answer a
// challenge from the Blob's slices with the very digest function the service uses, and the two
// requests that let a page skip an upload the service already has.
import { MediaReadError } from "../errors/index.ts";
import type { MediaId } from "../media-id/format.ts";
import { answerDigest, type ChallengeRange, type PossessionChallenge } from "../possession/digest.ts";
import { computeMediaId } from "./media-id.ts";
import { parseJson, requestJson } from "./http.ts";
import { refusal, UploadRequestError } from "./request-error.ts";
import { describe, nameOf, rejectUnknown, requireString, type UploadAnswer, untilAborted } from "./shared.ts";

export type { ChallengeRange, PossessionChallenge } from "../possession/digest.ts";

/** The most a challenge may have this client read and hash: far above any host's settings (12 x 4 KiB by default). */
const MAX_CHALLENGE_BYTES = 64 * 2 ** 20;
const MAX_RANGES = 1024;

/** Options of {@link answerPossessionChallenge}. */
export interface AnswerPossessionChallengeOptions {
  /** Aborts the reads; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * The answer to a possession challenge for the bytes of `blob`: base64url(SHA-256(nonce || the
 * challenge's ranges, in order)), computed by the service's own function over `Blob.slice()` reads
 * (WebCrypto, so a secure context in a browser: https or localhost).
 *
 * @throws {MediaReadError} the blob cannot be read (a `File` changed or removed since it was picked).
 * @throws {RangeError} a range lies past the blob's end (a challenge for another size).
 * @throws {TypeError} `blob` is not a Blob, the challenge is malformed, or an option is unknown.
 * @example
 * import { answerPossessionChallenge } from "media-intake/browser";
 * const digest = await answerPossessionChallenge(file, challenge); // "q3J0…" (43 characters)
 */
export async function answerPossessionChallenge(blob: Blob, challenge: PossessionChallenge, options: AnswerPossessionChallengeOptions = {}): Promise<string> {
  const of = "answerPossessionChallenge";
  rejectUnknown(options, ["signal"], of);
  const { signal } = options;
  signal?.throwIfAborted();
  if (!(blob instanceof Blob)) throw new TypeError(`${of}: expected a Blob or a File, got ${describe(blob)}.`);
  checkChallenge(challenge, blob.size, of);
  const readRange = async (offset: number, length: number) => {
    try {
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    } catch (error) {
      throw new MediaReadError("<blob>", error instanceof Error ? error.message : String(error), error);
    }
  };
  return untilAborted(answerDigest(challenge, readRange), signal);
}

/** Throws a TypeError for a challenge that is not one, a RangeError for ranges past `size` or too many bytes. */
function checkChallenge(challenge: PossessionChallenge, size: number, of: string): void {
  const { id, nonce, ranges } = (challenge ?? {}) as Partial<PossessionChallenge>;
  if (typeof id !== "string" || id === "" || typeof nonce !== "string" || !/^[A-Za-z0-9_-]+$/.test(nonce) || !Array.isArray(ranges) || ranges.length > MAX_RANGES) {
    throw new TypeError(`${of}: not a possession challenge (expected { id, nonce, ranges: [{ offset, length }], expiresAt }).`);
  }
  let total = 0;
  for (const range of ranges as unknown[]) {
    const { offset, length } = (range ?? {}) as Partial<ChallengeRange>;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || (offset as number) < 0 || (length as number) < 0) {
      throw new TypeError(`${of}: not a possession challenge (a range is not { offset, length } of non-negative integers).`);
    }
    if ((offset as number) + (length as number) > size) throw new RangeError(`${of}: the range [${offset}, ${(offset as number) + (length as number)}) lies past the end of the ${size}-byte file.`);
    total += length as number;
  }
  if (total > MAX_CHALLENGE_BYTES) throw new RangeError(`${of}: the challenge asks for ${total} bytes, more than the ${MAX_CHALLENGE_BYTES} this client reads.`);
}

/** Options of {@link skipUploadIfStored}. */
export interface SkipUploadIfStoredOptions {
  /** The possession endpoint: `POST url` asks for a challenge, `POST url/<challengeId>` answers it. */
  url: string;
  /** The caller's token, sent as `Authorization: Bearer`. */
  token: string;
  /** The file's media ID when known already; else computed here (`computeMediaId`). */
  mediaId?: MediaId;
  /** The file's name (its extension tells the type); default the File's own name. */
  name?: string;
  /** Stops the check; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** The outcome of {@link skipUploadIfStored}. */
export type SkipUploadResult = { skipped: true; status: number; body: UploadAnswer } | { skipped: false };

/**
 * Asks the service to prove, instead of an upload, that the caller holds `file`'s bytes: `POST
 * url` with `{ mediaId, size, name }` gets a challenge (always, stored or not, so the answer
 * reveals nothing), {@link answerPossessionChallenge} answers it, and `POST url/<challengeId>`
 * with `{ digest }` either has the effect of an upload (200 `{ media, detections }` or 202
 * `{ media, detection }`: `{ skipped: true }`) or is refused (403: `{ skipped: false }`, upload
 * the file).
 *
 * @throws {UploadRequestError} any other answer, or none: `status` and a plain-text `text`
 *   (401 not signed in or the token refused, 413 with the service's limit, 415 with the type, 5xx
 *   the service unavailable; status 0 no answer). Never containing the token.
 * @throws {MediaReadError} the file cannot be read.
 * @throws {TypeError} a missing option, a Blob without `name`, an unknown option.
 * @example
 * import { skipUploadIfStored } from "media-intake/browser";
 * const check = await skipUploadIfStored(file, { url: "/possession", token });
 * if (check.skipped) show(check.body.media);
 * else await uploadResumable(file, { endpoint: "/files", token }).done;
 */
export async function skipUploadIfStored(file: Blob & { name?: string }, options: SkipUploadIfStoredOptions): Promise<SkipUploadResult> {
  const of = "skipUploadIfStored";
  rejectUnknown(options ?? {}, ["url", "token", "mediaId", "name", "signal", "fetch"], of);
  const url = requireString(options?.url, "url", of);
  const token = requireString(options.token, "token", of);
  const { signal, fetch } = options;
  signal?.throwIfAborted();
  if (!(file instanceof Blob)) throw new TypeError(`${of}: expected a Blob or a File, got ${describe(file)}.`);
  const name = nameOf(file, options.name, of);
  const mediaId = options.mediaId ?? (await computeMediaId(file, signal ? { signal } : {}));

  const asked = await requestJson({ method: "POST", url, token, body: { mediaId, size: file.size, name }, signal, fetch });
  if (asked.status !== 200) throw refusal({ status: asked.status, body: asked.text, name, token });
  const challenge = (parseJson(asked.text) as { challenge?: PossessionChallenge } | undefined)?.challenge;
  let digest: string;
  try {
    digest = await answerPossessionChallenge(file, challenge as PossessionChallenge, signal ? { signal } : {});
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
    throw new UploadRequestError(200, "The service answered something else than a challenge for this file; try again later.", { cause: error });
  }

  const answered = await requestJson({ method: "POST", url: `${url.replace(/\/+$/, "")}/${encodeURIComponent((challenge as PossessionChallenge).id)}`, token, body: { digest }, signal, fetch });
  if (answered.status === 403) return { skipped: false };
  if (answered.status !== 200 && answered.status !== 202) throw refusal({ status: answered.status, body: answered.text, name, token });
  const body = parseJson(answered.text) as UploadAnswer | undefined;
  if (typeof body?.media?.id !== "string") throw new UploadRequestError(answered.status, "The service answered without the media; try again later.");
  return { skipped: true, status: answered.status, body };
}
