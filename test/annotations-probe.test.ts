// probeAnnotations over real HTTP: the contract's "no such media" (404 with a problem body) is
// ready; a wrong base path, a 405, an HTML 404 or nothing listening is not, and says which.
import { createServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { UnsecuredJWT } from "jose";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../examples/local-redis.ts";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createAnnotationsClient, probeAnnotations } from "../src/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

const probe = (baseUrl: string) => probeAnnotations(createAnnotationsClient({ baseUrl, token: new UnsecuredJWT({ sub: "detections-service" }).encode(), retry: false, timeoutMs: 1_000 }));

async function devServer() {
  const server = await startDevAnnotationsServer({ dbPath: join(await makeTempDir(), "annotations.db") });
  closing.push(() => server.close());
  return server.url;
}

async function answering(status: number, contentType: string, body: string) {
  const server = createServer((_req, res) => res.writeHead(status, { "content-type": contentType }).end(body));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closing.push(() => new Promise((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("probeAnnotations", () => {
  it("is ok against the dev server: its missing record is a 404 with a problem body", async () => {
    expect(await probe(await devServer())).toEqual({ ok: true });
  });

  it("is route-missing at a wrong base path of the same server, naming what was called", async () => {
    expect(await probe(`${await devServer()}/annotations`)).toEqual({
      ok: false,
      reason: "route-missing",
      message: 'GET /api/media/0000000000000000: 404 Not Found, without a problem body: not the contract\'s "no such media" (check the base URL)',
      status: 404,
      code: "ANNOTATIONS_ROUTE_MISSING",
    });
  });

  it("is route-missing on an HTML 404 and on a 405", async () => {
    expect(await probe(await answering(404, "text/html", "<h1>Not Found</h1>"))).toMatchObject({ ok: false, reason: "route-missing" });
    expect(await probe(await answering(405, "application/problem+json", '{"title":"Method Not Allowed"}'))).toMatchObject({ ok: false, reason: "route-missing", message: expect.stringContaining("405") });
  });

  it("is unavailable with nothing listening, auth-refused on a 401, failed on a 500", async () => {
    expect(await probe(`http://127.0.0.1:${await freePort()}`)).toMatchObject({ ok: false, reason: "unavailable", message: expect.stringContaining("ECONNREFUSED") });
    expect(await probe(await answering(401, "application/problem+json", '{"title":"Unauthorized"}'))).toMatchObject({ ok: false, reason: "auth-refused" });
    expect(await probe(await answering(500, "text/plain", "boom"))).toMatchObject({ ok: false, reason: "failed" });
  });
});
