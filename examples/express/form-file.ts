// The file of a multipart upload (`POST /detect`), read with busboy and handed on as it arrives:
// the intake starts on the first bytes, and a refused upload is answered without reading the rest.
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import busboy from "busboy";
import { AppError } from "./authorize.ts";

/**
 * The file part of a multipart form, ending only when the whole form has: a body cut after the
 * file (no closing boundary) fails the upload instead of keeping a file nobody finished sending.
 * A `Readable` that hands on busboy's chunks as they are: the store writes a stream's chunks
 * without copying them (a stream never writes into a chunk it pushed). Destroying it, as the
 * intake does to let go of it early, destroys busboy's stream.
 */
export function wholeFormFile(form: busboy.Busboy, file: Readable): Readable {
  const badForm = (error: Error) => (error instanceof AppError ? error : new AppError(400, "BAD_FORM", `Reading the form: ${error.message}`));
  let formClosed = false;
  let fileEnded = false;
  const whole = new Readable({
    read: () => void file.resume(),
    destroy(error, callback) {
      file.destroy();
      callback(error);
    },
  });
  file.pause();
  file.on("data", (chunk: Buffer) => {
    if (!whole.push(chunk)) file.pause();
  });
  file.once("end", () => {
    fileEnded = true;
    if (formClosed) whole.push(null);
  });
  // busboy fails the file stream when the body ends too soon: the client's fault, a 400.
  file.on("error", (error: Error) => whole.destroy(badForm(error)));
  form.once("close", () => {
    formClosed = true;
    if (fileEnded) whole.push(null);
  });
  form.once("error", (error: Error) => whole.destroy(badForm(error)));
  // Its errors reach the intake through the store's read; once the intake is over, nobody listens.
  whole.on("error", () => {});
  return whole;
}

/**
 * Reads the form of `req` and hands its field "file" (the first one; any other file is skipped) to
 * `intake` with the file's name. Settles as soon as the intake does: a refused upload (too large,
 * a lying type) is answered at once instead of after the rest of the body. A body that is not a
 * form, a broken one, or one without the file is a 400.
 */
export function intakeFormFile<T>(req: IncomingMessage, intake: (file: Readable, originalName: string) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let form: busboy.Busboy;
    try {
      // UTF-8 file names (browsers and curl send them raw; busboy's default is latin1).
      form = busboy({ headers: req.headers, limits: { files: 1 }, defParamCharset: "utf8" });
    } catch (error) {
      reject(new AppError(400, "BAD_FORM", `Expected multipart/form-data: ${(error as Error).message}`));
      return;
    }
    let started: Promise<T> | undefined;
    form.on("file", (field, stream, info) => {
      if (field !== "file" || started) {
        stream.resume();
        return;
      }
      started = intake(wholeFormFile(form, stream), info.filename ?? "");
      started.then(resolve, reject);
    });
    form.on("error", (error: Error) => {
      if (!started) reject(new AppError(400, "BAD_FORM", `Reading the form: ${error.message}`));
    });
    form.on("close", () => {
      if (!started) reject(new AppError(400, "NO_FILE", 'Expected a file in the form field "file".'));
    });
    req.pipe(form);
  });
}
