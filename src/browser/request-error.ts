// How the helpers of media-intake/browser report a request the service refused or never answered:
// one error class, with the status and a plain-text sentence a page can show as is. The service's
// own message is kept where it says something the user can act on (the limit of a 413, the type
// of a 415); never a header, so never the token.
import { MediaIntakeError } from "../errors/index.ts";
import type { UploadAnswer } from "./shared.ts";

/** What the service answered, as {@link UploadRequestError} is made from it. */
export interface RefusedAnswer {
  /** The HTTP status; `0` when there was no answer (the network, CORS, a refused connection). */
  status: number;
  /** The response body as text, when there was one. */
  body?: string | undefined;
  /** The file's name: a 415 names its type. */
  name?: string | undefined;
  /** Removed from anything shown, should the service echo it. */
  token?: string | undefined;
  /** What failed underneath (a `TypeError` of fetch, tus-js-client's error). */
  cause?: unknown;
}

/**
 * A request of media-intake/browser's helpers that the service refused, or that got no answer.
 * `text` (also the `message`) is plain text for a person: "Not signed in, or the token was
 * refused: sign in again." for a 401, the limit for a 413, the type for a 415, "The service is
 * unavailable, try again later." for a 5xx. It never contains the token.
 *
 * @example
 * try {
 *   await skipUploadIfStored(file, { url: "/possession", token });
 * } catch (error) {
 *   if (error instanceof UploadRequestError) row.textContent = error.text; // status in error.status
 *   else throw error;
 * }
 */
export class UploadRequestError extends MediaIntakeError {
  /** The HTTP status, or `0` when no answer came. */
  readonly status: number;
  /** The plain-text sentence to show (the same as `message`). */
  readonly text: string;
  /** The `error.code` of the service's JSON body (`"MEDIA_TOO_LARGE"`), when it sent one. */
  readonly serverCode: string | undefined;

  constructor(status: number, text: string, options: { serverCode?: string | undefined; cause?: unknown } = {}) {
    super(text, { code: "UPLOAD_REQUEST_FAILED", cause: options.cause });
    this.name = "UploadRequestError";
    this.status = status;
    this.text = text;
    this.serverCode = options.serverCode;
  }
}

/**
 * The polls of {@link followDetection} went unanswered (no connection, a 5xx, a 429) through all
 * their retries: the media are stored (the upload had ended), only the state of their detection is
 * not known yet. `answer` is the last answer known, its `detection.poll` made absolute: pass it to
 * `followDetection` again later to go on. `status` and `text` as for any {@link UploadRequestError}.
 */
export class DetectionStatusUnknownError extends UploadRequestError {
  /** The last answer known (`media`, `detection.poll` absolute): where to go on polling. */
  readonly answer: UploadAnswer;

  constructor(last: UploadRequestError, answer: UploadAnswer) {
    super(last.status, `The media are stored; the state of their detection is not known yet (${last.text.replace(/[.]$/, "")}).`, { serverCode: last.serverCode, cause: last });
    this.name = "DetectionStatusUnknownError";
    this.answer = answer;
  }
}

/** The longest part of the service's own message a text keeps. */
const MAX_SERVER_MESSAGE = 300;
/** The longest part of it read at all: the token is removed from this much, then it is cut to the above. */
const MAX_READ_MESSAGE = 4096;

/** The error of a refused (or unanswered) request, with its plain-text sentence. */
export function refusal(answer: RefusedAnswer): UploadRequestError {
  const { status, token } = answer;
  const { code, message } = errorBody(answer.body);
  // The token out first, then the cut: a cut inside an echoed token would leave a piece of it
  // that matches no whole part.
  const shown = message === undefined ? "" : withoutToken(message, token).slice(0, MAX_SERVER_MESSAGE).trim();
  const said = shown ? ` ${sentence(shown)}` : "";
  let text: string;
  if (status === 0) text = "The service could not be reached; check the connection and try again.";
  else if (status === 401) text = /\bexpired\b/i.test(shown) ? "Not signed in: the token has expired; sign in again." : "Not signed in, or the token was refused: sign in again.";
  else if (status === 413) text = `The file is too large.${said || " The service refused its size."}`;
  else if (status === 415) text = `This type of file is not accepted (${typeOf(answer.name)}).${said}`;
  else if (status >= 500) text = "The service is unavailable, try again later.";
  else if (status === 400) text = `The service refused the request.${said}`;
  else if (status === 403) text = `Not allowed.${said}`;
  else if (status === 404) text = `Not found.${said}`;
  else text = `The service answered ${status}.${said}`;
  return new UploadRequestError(status, withoutToken(text, token), { serverCode: code, cause: answer.cause });
}

/** The error of a `fetch` that got no answer: its abort reason as is, else status 0. */
export function unanswered(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason;
  return refusal({ status: 0, cause: error });
}

/** The `{ error: { code, message } }` of a JSON error body, or nothing. */
function errorBody(body: string | undefined): { code?: string; message?: string } {
  if (!body) return {};
  try {
    const error = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    return {
      ...(typeof error?.code === "string" ? { code: error.code.slice(0, 64) } : {}),
      ...(typeof error?.message === "string" && error.message !== "" ? { message: error.message.slice(0, MAX_READ_MESSAGE) } : {}),
    };
  } catch {
    return {};
  }
}

/** A message as a sentence: its first letter up, a full stop at its end. */
function sentence(message: string): string {
  const trimmed = message.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** `".txt" files`, as a 415 names the type: the name's extension, lowercased. */
function typeOf(name: string | undefined): string {
  const dot = name?.lastIndexOf(".") ?? -1;
  if (name === undefined || dot <= 0 || dot === name.length - 1) return name === undefined ? "unknown type" : "a name without an extension";
  return `${name.slice(dot).toLowerCase()} files`;
}

/** The shortest run of the token's characters taken out wherever it appears (a JWT's header alone is 20). */
const MIN_PIECE = 8;

/**
 * `text` with every piece of the token replaced by `[token]`: the token itself (so also its
 * `Bearer` form), each of its dot-separated parts (a JWT's header, claims, signature) and any run
 * of at least 8 of its characters in a row, so a service that echoes a fragment of it, or a
 * message cut inside it, shows none of its claims.
 */
function withoutToken(text: string, token: string | undefined): string {
  if (!token || token.length < 4) return text;
  let out = "";
  let at = 0;
  while (at < text.length) {
    let length = 0;
    while (at + length < text.length && token.includes(text.slice(at, at + length + 1))) length += 1;
    if (length >= MIN_PIECE) {
      out += "[token]";
      at += length;
    } else {
      out += text[at];
      at += 1;
    }
  }
  // A short token, or its shorter parts, whole (the runs above took the longer ones).
  for (const part of [token, ...token.split(".")].filter((piece) => piece.length >= 4)) out = out.split(part).join("[token]");
  return out.replace(/(\[token\])+/g, "[token]");
}
