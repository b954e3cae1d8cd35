// The requests the app is working on, for the graceful stop (stop.ts): each request's AbortSignal,
// aborted when its client goes away before the answer or when the stop cuts it, and the work the
// requests started (an intake, a multer file, a tus PATCH), waited for after a cut so that the
// stores remove their temp files before the process exits.
import type { IncomingMessage, ServerResponse } from "node:http";

/** The reason of a request's signal when the stop cut it (SHUTDOWN_TIMEOUT_MS ran out, or a second signal). */
export class RequestCutError extends Error {
  override readonly name = "RequestCutError";
}

export interface InFlight {
  /** The request's signal: aborted when its client leaves before its answer, or when the stop cuts it. */
  signal(req: IncomingMessage, res: ServerResponse): AbortSignal;
  /** `work` as is, remembered until it settles: a cut waits for it. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Aborts every request's signal, and resolves once the work in flight settled, or after `withinMs`. */
  cut(withinMs: number): Promise<void>;
}

export function createInFlight(): InFlight {
  const controllers = new Map<IncomingMessage, AbortController>();
  const work = new Set<Promise<void>>();
  return {
    signal(req, res) {
      const known = controllers.get(req);
      if (known) return known.signal;
      const controller = new AbortController();
      controllers.set(req, controller);
      res.once("close", () => {
        controllers.delete(req);
        // A client gone before the answer: the store aborts and removes its temp file.
        if (!res.writableFinished) controller.abort(new Error("the client disconnected"));
      });
      return controller.signal;
    },
    track(promise) {
      const settled = promise.then(
        () => {},
        () => {},
      );
      work.add(settled);
      void settled.then(() => work.delete(settled));
      return promise;
    },
    async cut(withinMs) {
      for (const controller of controllers.values()) controller.abort(new RequestCutError("The service is stopping: the request was cut."));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(work), new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)))]);
      clearTimeout(timer);
    },
  };
}

/**
 * Whether a request ended before its answer, so that its error is no failure of the service: the
 * client went away (mid-body, or while waiting), or the stop cut it (and answered it already).
 */
export function endedEarly(error: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  return error instanceof RequestCutError || req.readableAborted || (res.destroyed && !res.writableEnded);
}
