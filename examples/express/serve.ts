// Serving the app the way a deployment needs: timeouts sized for multi-GB uploads, JSON answers
// for what Node itself refuses (an oversized header, a request that took too long, a bad
// request line), and a listen error that is reported instead of ignored.
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import type express from "express";

export interface ServeOptions {
  host: string;
  port: number;
  /** Whole-request limit; 0 for none: an upload may take hours on a slow link. @default 0 */
  requestTimeoutMs?: number;
  /** Time to receive the request headers. @default 60_000 */
  headersTimeoutMs?: number;
  /** A connection with no bytes either way for this long is closed (a dead uploader). @default 120_000 */
  idleTimeoutMs?: number;
  logger: Logger;
}

const reasons: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "Request Timeout", "REQUEST_TIMEOUT"],
};

/** Answers a request Node refused before the app saw it, in the app's JSON shape. */
function refuseRaw(error: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  if (error.code === "ECONNRESET" || !socket.writable) return;
  const [status, text, code] = reasons[error.code ?? ""] ?? [400, "Bad Request", "BAD_REQUEST"];
  const body = JSON.stringify({ error: { code, message: `${text}.` } });
  logger.info({ code: error.code, status }, "request refused by the HTTP parser");
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * Why the address cannot be had, naming the variable to change: PORT when it is taken or needs
 * privileges, HOST when it does not resolve or is no address of this machine.
 */
export function listenFailure(error: NodeJS.ErrnoException, host: string, port: number): string {
  const at = `Cannot listen on ${host}:${port}`;
  const code = error.code ?? "error";
  if (code === "EADDRINUSE") return `${at}: PORT=${port} is in use on HOST=${host} (EADDRINUSE); stop what listens there or choose another PORT.`;
  if (code === "EACCES") return `${at}: PORT=${port} needs privileges (EACCES); choose a PORT of 1024 or more.`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") return `${at}: HOST=${host} does not resolve (${code}); give an address of this machine (127.0.0.1, 0.0.0.0).`;
  if (code === "EADDRNOTAVAIL") return `${at}: HOST=${host} is no address of this machine (EADDRNOTAVAIL); give one of its addresses (127.0.0.1, 0.0.0.0).`;
  return `${at}: ${error.message} (${code}); check HOST and PORT.`;
}

/** Listens with the options; rejects with a clear error when the address cannot be had. */
export async function serve(app: express.Express, options: ServeOptions): Promise<{ server: Server; url: string }> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 0;
  // Node checks request timeouts every 30 s by default: a short limit is checked more often.
  const server = createServer({ connectionsCheckingInterval: requestTimeoutMs > 0 ? Math.min(30_000, Math.max(50, requestTimeoutMs / 4)) : 30_000 }, app);
  server.requestTimeout = requestTimeoutMs;
  // Node checks the whole-request limit only when the headers' limit is no longer than it.
  const headersTimeoutMs = options.headersTimeoutMs ?? 60_000;
  server.headersTimeout = requestTimeoutMs > 0 ? Math.min(headersTimeoutMs, requestTimeoutMs) : headersTimeoutMs;
  server.timeout = options.idleTimeoutMs ?? 120_000;
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => refuseRaw(error, socket, options.logger));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => reject(new Error(listenFailure(error, options.host, options.port), { cause: error })));
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { server, url: `http://${host}:${port}` };
}
