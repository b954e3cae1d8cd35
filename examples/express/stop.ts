// A graceful stop on SIGTERM or SIGINT: no new connections, the requests under way (uploads that
// may take minutes) finish within a time limit, then the rest closes and the process exits: 0
// when every request finished, 1 when the limit (or a second signal) cut some.
import type { Server, ServerResponse } from "node:http";
import type { Logger } from "pino";

export interface StopOptions {
  logger: Logger;
  /** How long the requests under way may take to finish (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number;
  /** Closes what the process opened besides the server (queue, journal, recovery, …; telemetry last, to send its spans). */
  close: () => Promise<void>;
  /** The variable that sets the limit, named in the log when it cuts requests. @default "SHUTDOWN_TIMEOUT_MS" */
  variable?: string;
}

/** Installs the SIGTERM and SIGINT handlers on `server`; call once, right after it listens. */
export function stopGracefully(server: Server, options: StopOptions): void {
  const { logger, timeoutMs, close, variable = "SHUTDOWN_TIMEOUT_MS" } = options;
  const underWay = new Set<ServerResponse>();
  let stopping = false;
  server.on("request", (_req, res: ServerResponse) => {
    underWay.add(res);
    // Once stopping, no connection is kept alive for another request.
    if (stopping) res.shouldKeepAlive = false;
    res.once("close", () => underWay.delete(res));
  });

  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    try {
      await close();
    } catch (error) {
      logger.error({ err: error }, "stopping: closing failed");
      code = 1;
    }
    logger.info({ code }, "stopped");
    process.exit(code);
  };
  const cut = (why: string) => {
    logger.error({ requests: underWay.size }, `${why}: ${underWay.size} request(s) under way were cut`);
    server.closeAllConnections();
    void exit(1);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return cut(`stopping at once on a second ${signal}`);
    stopping = true;
    for (const res of underWay) if (!res.headersSent) res.shouldKeepAlive = false;
    const timer = setTimeout(() => cut(`stopping: ${variable} (${timeoutMs} ms) ran out; raise ${variable} to let uploads finish`), timeoutMs);
    // Called once every connection is gone: idle ones now, busy ones after their answer.
    server.close(() => {
      clearTimeout(timer);
      void exit(0);
    });
    server.closeIdleConnections();
    // Logged once the server no longer listens.
    logger.info({ signal, requests: underWay.size, timeoutMs }, `stopping: the requests under way finish first (${variable}=${timeoutMs})`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
