// A graceful stop on SIGTERM or SIGINT: no new connections, the requests under way (uploads that
// may take minutes) finish within a time limit, then the rest closes within the same limit and
// the process exits: 0 when everything finished, 1 when the limit (or a second signal) cut some.
// Nothing waits on a dependency beyond the limit: a Redis that hangs, an annotations service that
// does not answer, a collector out of reach are left behind, named in the log.
import type { Server, ServerResponse } from "node:http";
import type { Logger } from "pino";

/**
 * After a cut: how long the cut requests' work gets to settle (their temp files removed), and
 * the least time the closes get when the requests took the whole limit. A process is gone at
 * most SHUTDOWN_TIMEOUT_MS + 2 × this after the signal.
 */
export const CUT_GRACE_MS = 1_000;

/** One thing to close at the stop, named in the log when it does not close in time. */
export interface CloseStep {
  /** What it is, for the log: "the journal on REDIS_URL". */
  name: string;
  close: () => Promise<unknown>;
}

export interface StopOptions {
  logger: Logger;
  /** How long the requests under way, then the closes, may take (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number;
  /** What the process opened besides the server, closed in this order once no request is under way (telemetry last, to send its spans). */
  closes: readonly CloseStep[];
  /**
   * Aborts the work of the requests the limit cut (their intakes, with `signal`), and resolves
   * once it settled (the stores removed their temp files), or after `withinMs`.
   */
  abortRequests?: (withinMs: number) => Promise<void>;
  /** The variable that sets the limit, named in the log when it cuts requests. @default "SHUTDOWN_TIMEOUT_MS" */
  variable?: string;
}

/** Whether `promise` settled within `ms`: "done", its error, or "late". */
async function within(promise: Promise<unknown>, ms: number): Promise<"done" | "late" | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), Math.max(0, ms))));
  try {
    return await Promise.race([promise.then(() => "done" as const, (error: unknown) => ({ error })), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs each step in turn until `by` (a `performance.now()` time). Resolves `true` when all closed;
 * `false` when one failed (logged) or did not close in time: that one and the steps after it are
 * named in the log, and left behind (the process exits anyway).
 */
export async function closeInTurn(steps: readonly CloseStep[], by: number, logger: Logger, limit: string, hint = ""): Promise<boolean> {
  let clean = true;
  for (const [i, step] of steps.entries()) {
    const outcome = await within(step.close(), by - performance.now());
    if (outcome === "done") continue;
    if (outcome !== "late") {
      logger.error({ err: outcome.error, closing: step.name }, `stopping: closing ${step.name} failed`);
      clean = false;
      continue;
    }
    const rest = steps.slice(i + 1).map((later) => later.name);
    logger.error({ closing: step.name, skipped: rest }, `stopping: ${limit} ran out while closing ${step.name}${rest.length > 0 ? ` (not closed either: ${rest.join(", ")})` : ""}; exiting without waiting${hint ? `. ${hint}` : ""}`);
    return false;
  }
  return clean;
}

/** The answer of a request the stop cut before its answer started: 503, try again (elsewhere, or after the restart). */
function answerStopping(res: ServerResponse): void {
  const socket = res.socket;
  if (res.headersSent || !res.writable) {
    res.req.destroy();
    socket?.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: "SERVICE_STOPPING", message: "The service is stopping and this request did not finish in time. Send it again." } });
  res.writeHead(503, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), "retry-after": "5", connection: "close" });
  // Once the answer is handed to the kernel, the request is destroyed: its work aborts (multer's
  // engine, on the request's "close"), and the connection goes (the client stops sending). Node
  // forgets a request once its answer is sent: without this, nothing would tell its readers.
  res.end(body, () => {
    res.req.destroy();
    socket?.destroy();
  });
}

/** Installs the SIGTERM and SIGINT handlers on `server`; call once, right after it listens. */
export function stopGracefully(server: Server, options: StopOptions): void {
  const { logger, timeoutMs, closes, variable = "SHUTDOWN_TIMEOUT_MS" } = options;
  const limit = `${variable} (${timeoutMs} ms)`;
  const underWay = new Set<ServerResponse>();
  let stopping = false;
  server.on("request", (_req, res: ServerResponse) => {
    underWay.add(res);
    // Once stopping, no connection is kept alive for another request.
    if (stopping) res.shouldKeepAlive = false;
    res.once("close", () => underWay.delete(res));
  });

  let exiting = false;
  const exit = async (code: number, closeBy: number) => {
    if (exiting) return;
    exiting = true;
    if (!(await closeInTurn(closes, closeBy, logger, limit, "A dependency that does not answer (REDIS_URL, ANNOTATIONS_URL, the OTLP collector) is not waited for."))) code = 1;
    logger.info({ code }, "stopped");
    process.exit(code);
  };

  let cutting = false;
  let timer: NodeJS.Timeout | undefined;
  const cut = async (why: string) => {
    if (cutting) return;
    cutting = true;
    clearTimeout(timer);
    logger.error({ requests: underWay.size }, `${why}: ${underWay.size} request(s) under way were cut`);
    for (const res of underWay) answerStopping(res);
    // Their intakes aborted, and waited for: the stores remove their temp files before the exit.
    await options.abortRequests?.(CUT_GRACE_MS);
    server.closeAllConnections();
    void exit(1, performance.now() + CUT_GRACE_MS);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Closing already, or cutting: nothing is left to wait for but the dependencies.
      if (exiting || cutting) {
        logger.error({ signal }, `stopping at once on a second ${signal}`);
        process.exit(1);
      }
      return void cut(`stopping at once on a second ${signal}`);
    }
    stopping = true;
    const deadline = performance.now() + timeoutMs;
    for (const res of underWay) if (!res.headersSent) res.shouldKeepAlive = false;
    timer = setTimeout(() => void cut(`stopping: ${limit} ran out; raise ${variable} to let uploads finish`), timeoutMs);
    // Called once every connection is gone: idle ones now, busy ones after their answer. The
    // closes get what is left of the limit (never less than CUT_GRACE_MS).
    server.close(() => {
      clearTimeout(timer);
      if (!cutting) void exit(0, Math.max(deadline, performance.now() + CUT_GRACE_MS));
    });
    server.closeIdleConnections();
    // Logged once the server no longer listens.
    logger.info({ signal, requests: underWay.size, timeoutMs }, `stopping: the requests under way finish first (${variable}=${timeoutMs})`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
