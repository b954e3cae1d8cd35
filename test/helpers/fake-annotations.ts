// An in-memory annotations service that follows docs/contract.md "Annotations service API": the same
// logic behind the msw handlers (unit tests) and a real loopback server (integration tests).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRequest {
  method: string;
  path: string;
  authorization: string | null;
  body: string;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  contentType?: string;
}

export interface FakeAnnotations {
  records: Map<string, Record<string, unknown>>;
  /** Every request seen, in order, for asserting what went over the wire. */
  log: FakeRequest[];
  handle(request: FakeRequest): FakeResponse;
}

const problem = (status: number, title: string, detail?: string, errors?: Record<string, string[]>): FakeResponse => ({
  status,
  contentType: "application/problem+json",
  body: { type: "about:blank", title, status, ...(detail ? { detail } : {}), ...(errors ? { errors } : {}) },
});

export function createFakeAnnotations(options: { acceptToken?: (token: string) => boolean } = {}): FakeAnnotations {
  const records = new Map<string, Record<string, unknown>>();
  const log: FakeRequest[] = [];
  const acceptToken = options.acceptToken ?? ((token: string) => token.length > 0);

  function handle(request: FakeRequest): FakeResponse {
    log.push(request);
    const token = request.authorization?.match(/^Bearer (.+)$/)?.[1];
    if (!token || !acceptToken(token)) return problem(401, "Unauthorized", "A valid bearer token is required.");
    const statusMatch = request.path.match(/^\/api\/media\/([^/]+)\/status$/);
    const itemMatch = request.path.match(/^\/api\/media\/([^/]+)$/);
    if (request.method === "POST" && request.path === "/api/media") {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(request.body) as Record<string, unknown>;
      } catch {
        return problem(400, "The request body is not JSON.");
      }
      const errors: Record<string, string[]> = {};
      if (typeof body.Id !== "string" || !/^[0-9a-f]{16}$/.test(body.Id)) errors.Id = ["The Id field must be 16 lowercase hex digits."];
      for (const field of ["Name", "Path", "UserId"]) {
        if (typeof body[field] !== "string" || body[field] === "") errors[field] = [`The ${field} field is required.`];
      }
      if (body.MediaType !== 1 && body.MediaType !== 2) errors.MediaType = ["The MediaType field must be 1 or 2."];
      if (![1, 2, 3, 6].includes(body.MediaStatus as number)) errors.MediaStatus = ["The MediaStatus field must be 1, 2, 3 or 6."];
      if (Object.keys(errors).length > 0) return problem(400, "One or more validation errors occurred.", undefined, errors);
      const id = body.Id as string;
      if (records.has(id)) return problem(409, "Conflict", `Media ${id} already exists.`);
      const record = {
        id,
        name: body.Name,
        path: body.Path,
        mediaType: body.MediaType,
        mediaStatus: body.MediaStatus,
        userId: body.UserId,
      };
      records.set(id, record);
      return { status: 201, body: record };
    }
    if (request.method === "GET" && itemMatch) {
      const record = records.get(itemMatch[1] ?? "");
      return record ? { status: 200, body: record } : problem(404, "Not Found", `No media ${itemMatch[1]}.`);
    }
    if (request.method === "PUT" && statusMatch) {
      const record = records.get(statusMatch[1] ?? "");
      if (!record) return problem(404, "Not Found", `No media ${statusMatch[1]}.`);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(request.body) as Record<string, unknown>;
      } catch {
        return problem(400, "The request body is not JSON.");
      }
      if (![1, 2, 3, 6].includes(body.MediaStatus as number)) {
        return problem(400, "One or more validation errors occurred.", undefined, { MediaStatus: ["The MediaStatus field must be 1, 2, 3 or 6."] });
      }
      record.mediaStatus = body.MediaStatus;
      return { status: 204 };
    }
    // An unknown route: a router's plain 404, no problem body (not the contract's "no such media").
    return { status: 404, body: `No route for ${request.method} ${request.path}.`, contentType: "text/plain; charset=utf-8" };
  }

  return { records, log, handle };
}

/**
 * What a fault-injecting `intercept` may do with a request:
 * - `"hang"`: never answer, never apply it (a crash test kills its client meanwhile);
 * - `"commit-hang"`: apply it, then never answer (the client times out after the fact);
 * - `"commit-garbage"`: apply it, then answer 200 with a body that is no JSON;
 * - `"reset"`: drop the connection without applying it;
 * - `{ status, after? }`: answer that status with a problem body (once `after` settles), without applying it;
 * - `{ until }`: hold the request until the promise settles, then answer it normally.
 */
export type Fault = "hang" | "commit-hang" | "commit-garbage" | "reset" | { status: number; after?: Promise<unknown> } | { until: Promise<unknown> };

/**
 * Serves a fake on a real loopback port. `intercept` sees each request first and may inject a
 * {@link Fault}; `undefined` lets the fake answer.
 */
export async function startFakeAnnotationsServer(fake = createFakeAnnotations(), intercept?: (request: FakeRequest) => Fault | undefined) {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    const answerWith = (answer: FakeResponse) => {
      if (answer.body === undefined) {
        response.writeHead(answer.status).end();
      } else {
        response.writeHead(answer.status, { "content-type": answer.contentType ?? "application/json; charset=utf-8" });
        response.end(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body));
      }
    };
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1");
      const seen: FakeRequest = {
        method: request.method ?? "GET",
        path: url.pathname,
        authorization: request.headers.authorization ?? null,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      const fault = intercept?.(seen);
      if (fault === "hang") return;
      if (typeof fault === "object" && "until" in fault) {
        void fault.until.finally(() => answerWith(fake.handle(seen)));
        return;
      }
      if (fault === "reset") {
        request.socket.destroy();
        return;
      }
      if (typeof fault === "object" && "status" in fault) {
        fake.log.push(seen);
        void Promise.resolve(fault.after).finally(() =>
          response.writeHead(fault.status, { "content-type": "application/problem+json" }).end(JSON.stringify({ title: "Injected fault", status: fault.status })),
        );
        return;
      }
      const answer = fake.handle(seen);
      if (fault === "commit-hang") return;
      if (fault === "commit-garbage") {
        response.writeHead(200, { "content-type": "application/json" }).end("<html>proxy error</html>");
        return;
      }
      answerWith(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    fake,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
