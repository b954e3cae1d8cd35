// How the tus endpoint answers errors: the JSON body and status of every other route (through
// httpErrorFor), with @tus/server's own refusals given codes a client can branch on.
import { MediaIntakeError } from "../errors/index.ts";
import { httpErrorFor } from "../http/index.ts";

/** An error @tus/server answers with its own status and body (it reads `status_code` and `body`). */
export class TusAnswer extends Error {
  readonly status_code: number;
  readonly body: string;
  /** Headers that go with it (`Retry-After` of a 503). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, extra: { headers?: Readonly<Record<string, string>>; mediaId?: string | undefined } = {}) {
    super(message);
    this.name = "TusAnswer";
    this.status_code = status;
    this.headers = extra.headers ?? {};
    this.body = JSON.stringify({ error: { code, message, ...(extra.mediaId ? { mediaId: extra.mediaId } : {}) } });
  }
}

/** The status, headers and body of a library error, in the JSON shape of every other route. */
export function tusAnswerFor(error: unknown): TusAnswer {
  const answer = httpErrorFor(error);
  return new TusAnswer(answer.status, answer.code, answer.message, { headers: answer.headers, mediaId: answer.mediaId });
}

/** @tus/server's own refusals, by status, as codes a client can branch on. */
export const tusCodes: Readonly<Record<number, string>> = {
  400: "BAD_REQUEST",
  403: "FORBIDDEN",
  404: "UPLOAD_NOT_FOUND",
  409: "UPLOAD_OFFSET_MISMATCH",
  410: "UPLOAD_EXPIRED",
  412: "TUS_VERSION_REQUIRED",
  413: "MEDIA_TOO_LARGE",
  423: "UPLOAD_LOCKED",
  460: "CHECKSUM_MISMATCH",
};

/** A refusal of the upload itself, which no retry changes: the upload goes. */
export function isRefusal(error: unknown): boolean {
  const status = httpErrorFor(error).status;
  return error instanceof MediaIntakeError && status >= 400 && status < 500 && status !== 401 && status !== 403;
}
