// An upload refused for its size counts as `media_intake.uploads{outcome="refused"}` on every
// entry point (docs/observability.md): the stream's and multer's through their intake, tus's here,
// where the endpoint answers 413 before any intake runs: a creation whose Upload-Length is over
// the limit, and a PATCH past it (a deferred length, or bytes past the declared length). A finish
// that its intake refuses is counted by the intake, not again here.
import type { IncomingMessage, ServerResponse } from "node:http";
import { recordUpload } from "../telemetry/index.ts";

/** When each request in flight through the endpoint came in. */
const arrivals = new WeakMap<IncomingMessage, number>();

/** `handle`, noting when each request comes in (the refusal's duration is from then). */
export function timedHandle(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return (req, res) => {
    arrivals.set(req, performance.now());
    return handle(req, res);
  };
}

/** Counts one upload refused for its size (a 413 of the endpoint's own): `request` is the Node request, or @tus/server's, which carries it (`node.req`). */
export function countSizeRefusal(request: object): void {
  const arrived = arrivals.get((request as { readonly node?: { readonly req?: IncomingMessage } }).node?.req ?? (request as IncomingMessage));
  recordUpload("tus", "refused", arrived === undefined ? 0 : (performance.now() - arrived) / 1000, undefined);
}
