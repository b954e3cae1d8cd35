// A real annotations service for local development, the demo and integration tests: docs/contract.md's
// Media API over HTTP, records and their status history in SQLite (node:sqlite, no add-on).
import { checkOptionsOf, MINIMUM } from "../utils/index.ts";
import { mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import type { DatabaseSync as Database } from "node:sqlite";
import { userIdFromToken } from "../auth/index.ts";
import { isMediaIntakeError } from "../errors/index.ts";

/** Options of {@link startDevAnnotationsServer}. */
export interface DevAnnotationsServerOptions {
  /** Port to listen on; `0` picks a free one. @default 0 */
  port?: number;
  /** Interface to listen on. @default "127.0.0.1" */
  host?: string;
  /** SQLite database file, created (with its folder) when missing; `":memory:"` keeps nothing. */
  dbPath: string;
  /**
   * HS256 secret: bearer tokens must be signed with it. Without it a token must still be a
   * well-formed, unexpired JWT, but its signature is not checked (development only).
   */
  jwtSecret?: string;
  /** How long a write waits for a database another connection holds, before a 503. @default 5_000 */
  busyTimeoutMs?: number;
}

/** A running dev annotations server. */
export interface DevAnnotationsServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Stops listening, ends open connections and closes the database. */
  close(): Promise<void>;
}

/** One status a record went through, as `GET /api/media/{id}/history` lists it. */
export interface StatusHistoryEntry {
  readonly mediaStatus: number;
  readonly at: string;
}

const MAX_BODY_BYTES = 1 << 20;
/** The longest text fields accepted, in characters (a record is not a place for megabytes). */
const fieldLimits: Readonly<Record<string, number>> = { Id: 16, Name: 1024, Path: 4096, UserId: 256 };
const idPattern = /^[0-9a-f]{16}$/i;

/**
 * node:sqlite, loaded when a server starts: on a Node without it (before 22.13) the failure says
 * what to upgrade instead of a bare ERR_UNKNOWN_BUILTIN_MODULE at import.
 */
async function loadSqlite(): Promise<typeof import("node:sqlite")> {
  try {
    return await import("node:sqlite");
  } catch (error) {
    throw new Error(`The dev annotations server needs node:sqlite, in Node.js 22.13 or newer; this is Node.js ${process.versions.node}. Upgrade Node.`, { cause: error });
  }
}

class Problem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: Record<string, string[]> | undefined;

  constructor(status: number, title: string, detail?: string, errors?: Record<string, string[]>) {
    super(title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
  }
}

/**
 * Starts the dev annotations server. It implements docs/contract.md's API exactly (`POST /api/media`,
 * `GET /api/media/{id}`, `PUT /api/media/{id}/status`) plus `GET /api/media/{id}/history`, the
 * status history, for the demo. Responses are camelCase, as ASP.NET answers by default; errors
 * are RFC 9457 problem bodies: 400 naming the field, 401 without a valid bearer token, 404,
 * 409 for a duplicate Id, 413 for a body over 1 MiB, 415 for a body that is not JSON, 503 when
 * the database stays locked by another connection (an unknown path: a plain-text 404, no problem
 * body, as a router answers it). Text fields are bounded (Name 1024
 * characters, Path 4096, UserId 256). For development only: any valid token reads and changes
 * any record (it checks no owner), so users must never reach it.
 *
 * @example
 * const server = await startDevAnnotationsServer({ port: 0, dbPath: "./annotations.db" });
 * const client = createAnnotationsClient({ baseUrl: server.url });
 */
export async function startDevAnnotationsServer(options: DevAnnotationsServerOptions): Promise<DevAnnotationsServer> {
  const check = checkOptionsOf("startDevAnnotationsServer");
  check.known(options, ["port", "host", "dbPath", "jwtSecret", "busyTimeoutMs"]);
  const { port = 0, host = "127.0.0.1", dbPath, jwtSecret, busyTimeoutMs = 5_000 } = options;
  check.integer("busyTimeoutMs", busyTimeoutMs, { min: MINIMUM.timeoutMs, unit: "ms" });
  check.integer("port", port, { min: 0, max: 65535 });
  if (typeof dbPath !== "string" || dbPath === "") check.fail("dbPath", 'a file path or ":memory:"', dbPath);
  if (dbPath !== ":memory:") await mkdir(dirname(resolve(dbPath)), { recursive: true });
  const { DatabaseSync } = await loadSqlite();
  const db: Database = new DatabaseSync(dbPath);
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = ${busyTimeoutMs};
    CREATE TABLE IF NOT EXISTS media (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, media_type INTEGER NOT NULL,
      media_status INTEGER NOT NULL, user_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS status_history (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, media_id TEXT NOT NULL REFERENCES media(id), media_status INTEGER NOT NULL, at TEXT NOT NULL);
  `);
  const insert = db.prepare(
    "INSERT INTO media (id, name, path, media_type, media_status, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const select = db.prepare("SELECT * FROM media WHERE id = ?");
  const setStatus = db.prepare("UPDATE media SET media_status = ?, updated_at = ? WHERE id = ?");
  const addHistory = db.prepare("INSERT INTO status_history (media_id, media_status, at) VALUES (?, ?, ?)");
  const history = db.prepare("SELECT media_status, at FROM status_history WHERE media_id = ? ORDER BY seq");

  const toRecord = (row: Record<string, unknown>) => ({
    id: row.id,
    name: row.name,
    path: row.path,
    mediaType: row.media_type,
    mediaStatus: row.media_status,
    userId: row.user_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });

  async function authorize(request: IncomingMessage): Promise<void> {
    try {
      await userIdFromToken(request.headers.authorization, jwtSecret ? { verify: { secret: jwtSecret } } : {});
    } catch (error) {
      if (isMediaIntakeError(error, "AUTH_TOKEN_INVALID")) throw new Problem(401, "Unauthorized", (error as Error).message);
      throw error;
    }
  }

  async function handle(request: IncomingMessage): Promise<{ status: number; body?: unknown; text?: string }> {
    const url = new URL(request.url ?? "/", "http://localhost");
    const parts = url.pathname.split("/").filter(Boolean);
    // An unknown path is no "no such media": a plain 404 without a problem body, as a web
    // framework's router answers it (a client's probe tells the two apart). A path is a route by
    // its shape, before any segment is read as an ID: `/api/media/api/media` (a base URL that
    // holds the resource path) is no route, never a 400 for an ID "api" that a client would
    // take for the contract's refusal of its record.
    const route = parts[0] === "api" && parts[1] === "media" && (parts.length <= 3 || (parts.length === 4 && (parts[3] === "status" || parts[3] === "history")));
    if (!route) return { status: 404, text: `No route ${request.method} ${url.pathname}.` };
    await authorize(request);
    const method = request.method ?? "GET";
    if (parts.length === 2) {
      if (method !== "POST") throw new Problem(405, "Method Not Allowed");
      return create(await readJson(request));
    }
    const id = parts[2] ?? "";
    if (!idPattern.test(id)) throw new Problem(400, "One or more validation errors occurred.", undefined, { id: [`"${id}" is not a media ID of 16 hex digits.`] });
    const key = id.toLowerCase();
    if (parts.length === 3 && method === "GET") {
      const row = select.get(key);
      if (!row) throw new Problem(404, "Not Found", `No media ${key}.`);
      return { status: 200, body: toRecord(row) };
    }
    if (parts[3] === "status" && method === "PUT") return updateStatus(key, await readJson(request));
    if (parts[3] === "history" && method === "GET") {
      if (!select.get(key)) throw new Problem(404, "Not Found", `No media ${key}.`);
      return { status: 200, body: history.all(key).map((row) => ({ mediaStatus: row.media_status, at: row.at })) };
    }
    throw new Problem(405, "Method Not Allowed");
  }

  /**
   * Runs `work` in an immediate transaction. A database that stays locked (another connection
   * holding it past the busy timeout) is a 503 that says so, never a failed ROLLBACK of a
   * transaction that never began.
   */
  function transaction(work: () => void): void {
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      const locked = /locked|busy/i.test((error as Error).message);
      throw new Problem(locked ? 503 : 500, locked ? "Service Unavailable" : "Internal Server Error", `The database could not start a transaction: ${(error as Error).message}.`);
    }
    try {
      work();
      db.exec("COMMIT");
    } catch (error) {
      try {
        db.exec("ROLLBACK");
      } catch {
        // Rolled back already by SQLite: the real error is the one that counts.
      }
      throw error;
    }
  }

  function create(body: Record<string, unknown>) {
    const errors: Record<string, string[]> = {};
    const field = (name: string) => body[Object.keys(body).find((key) => key.toLowerCase() === name.toLowerCase()) ?? name];
    const text = (name: string) => {
      const value = field(name);
      const limit = fieldLimits[name] ?? 1024;
      if (typeof value !== "string" || value.trim() === "") errors[name] = [`The ${name} field is required and must be a non-empty string.`];
      else if (value.length > limit) errors[name] = [`The ${name} field must be at most ${limit} characters, got ${value.length}.`];
      return value as string;
    };
    const id = text("Id");
    if (typeof id === "string" && !idPattern.test(id)) errors.Id = ["The Id field must be 16 hex digits."];
    const name = text("Name");
    const path = text("Path");
    const userId = text("UserId");
    const mediaType = field("MediaType");
    if (mediaType !== 1 && mediaType !== 2) errors.MediaType = ["The MediaType field must be 1 (Video) or 2 (Image)."];
    const mediaStatus = field("MediaStatus") ?? 1;
    if (!Number.isInteger(mediaStatus) || (mediaStatus as number) < 1 || (mediaStatus as number) > 6) {
      errors.MediaStatus = ["The MediaStatus field must be an integer from 1 to 6."];
    }
    if (Object.keys(errors).length > 0) throw new Problem(400, "One or more validation errors occurred.", undefined, errors);
    const key = id.toLowerCase();
    const now = new Date().toISOString();
    transaction(() => {
      if (select.get(key)) throw new Problem(409, "Conflict", `Media ${key} already exists.`);
      insert.run(key, name, path, mediaType as number, mediaStatus as number, userId, now, now);
      addHistory.run(key, mediaStatus as number, now);
    });
    return { status: 201, body: toRecord(select.get(key) as Record<string, unknown>) };
  }

  function updateStatus(id: string, body: Record<string, unknown>) {
    const key = Object.keys(body).find((k) => k.toLowerCase() === "mediastatus");
    const status = key === undefined ? undefined : body[key];
    if (!Number.isInteger(status) || (status as number) < 1 || (status as number) > 6) {
      throw new Problem(400, "One or more validation errors occurred.", undefined, { MediaStatus: ["The MediaStatus field must be an integer from 1 to 6."] });
    }
    const now = new Date().toISOString();
    transaction(() => {
      const changed = setStatus.run(status as number, now, id).changes;
      if (changed === 0) throw new Problem(404, "Not Found", `No media ${id}.`);
      addHistory.run(id, status as number, now);
    });
    return { status: 204 };
  }

  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    handle(request).then(
      ({ status, body, text }) => (text === undefined ? send(response, status, body) : response.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(text)),
      (error: unknown) => {
        const problem = error instanceof Problem ? error : new Problem(500, "Internal Server Error", (error as Error)?.message);
        send(response, problem.status, {
          type: "about:blank",
          title: problem.title,
          status: problem.status,
          ...(problem.detail ? { detail: problem.detail } : {}),
          ...(problem.errors ? { errors: problem.errors } : {}),
        }, "application/problem+json");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return Object.freeze({
    url: `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          db.close();
          resolve();
        });
      }),
  });
}

function send(response: ServerResponse, status: number, body: unknown, contentType = "application/json; charset=utf-8"): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers["content-type"] ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    request.resume();
    throw new Problem(415, "Unsupported Media Type", "The body must be application/json.");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Problem(413, "Payload Too Large", `The body is larger than ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new Problem(400, "The request body is not valid JSON.");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Problem(400, "The request body must be a JSON object.");
  return body as Record<string, unknown>;
}
