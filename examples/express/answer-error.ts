// How every route answers an error: one JSON body (`{ error: { code, message, mediaId? } }`) with
// the status and headers of the error (httpErrorFor, or the app's own AppError), a log line for a
// 5xx, and the rest of a refused upload read and dropped so that the answer reaches the client.
import type { IncomingMessage } from "node:http";
import type { Request, Response } from "express";
import { httpErrorFor, MediaIntakeError } from "../../src/index.ts";
import { AppError } from "./authorize.ts";
import { CorruptMediaError } from "./detector.ts";

/**
 * Express's refusal of a path parameter it cannot decode (`/media/%ZZ`): a URIError with status
 * 400, a client's mistake to answer as one, not an internal error.
 */
function isUndecodablePath(error: unknown): boolean {
  return error instanceof URIError && (error as { status?: unknown }).status === 400;
}

/** What an error answers: the app's own errors, detection's failure, Express's undecodable path, else httpErrorFor's. */
function answerOf(error: unknown, req: Request) {
  if (error instanceof AppError) return { status: error.status, code: error.code, message: error.message, headers: error.headers, mediaId: error.mediaId, log: false };
  if (error instanceof CorruptMediaError || (error instanceof MediaIntakeError && error.code === "DETECTION_FAILED")) {
    return { status: 422, code: "DETECTION_FAILED", message: error.message, headers: {}, log: false };
  }
  if (isUndecodablePath(error)) {
    const message = `The path ${quoted(req.path)} is not valid percent-encoding: a "%" must be followed by two hex digits, and together they must make UTF-8 (as %C3%A9 for "é").`;
    return { status: 400, code: "BAD_REQUEST", message, headers: {}, log: false };
  }
  return httpErrorFor(error);
}

/** The JSON error body every route answers with, and the log line of a 5xx. */
export function sendError(error: unknown, req: Request, res: Response): void {
  const answer = answerOf(error, req);
  if (answer.log) req.log.error({ err: error, code: answer.code }, "request failed");
  if (res.headersSent) return;
  res
    .status(answer.status)
    .set(answer.headers)
    .json({ error: { code: answer.code, message: answer.message, ...("mediaId" in answer && answer.mediaId ? { mediaId: answer.mediaId } : {}) } });
}

/** A request's text as a message shows it: JSON, cut to 100 characters. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

/**
 * The rest of a refused upload is read and dropped (up to `limit` bytes), so the answer reaches
 * a client that is still sending; a longer one is cut. `done` runs once the body is read, or
 * cut, or the client is gone.
 */
export function drainRequest(req: IncomingMessage, limit: number, done: () => void = () => {}): void {
  if (req.complete || req.destroyed) return done();
  let drained = 0;
  let called = false;
  const finish = () => {
    if (called) return;
    called = true;
    done();
  };
  req.unpipe();
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length;
    if (drained <= limit) return;
    req.pause();
    req.removeAllListeners("data");
    // The answer (if still to send) goes out first; the connection is closed after it.
    finish();
    req.socket.end(() => req.socket.destroy());
  });
  req.once("end", finish);
  req.once("close", finish);
  req.resume();
}

/**
 * An error's answer, with the rest of the request's body drained. On a kept-alive connection the
 * answer goes at once and the body is read after it (Node reads on for the next request); on one
 * that closes after the answer (`Connection: close`, HTTP/1.0), Node would close it while the
 * client still sends (EPIPE instead of the answer), so the body is read first, as multer does.
 */
export function answerError(error: unknown, req: Request, res: Response, limit: number): void {
  if (res.shouldKeepAlive || req.complete || req.destroyed) {
    sendError(error, req, res);
    drainRequest(req, limit);
    return;
  }
  drainRequest(req, limit, () => {
    if (!req.socket.destroyed) sendError(error, req, res);
  });
}
