// What the annotations service sends slowly or badly, over real HTTP on loopback: a body that
// stalls, a token that cannot go in a header, and response bodies read up to 1 MiB (endless,
// exactly at the limit, compressed, on an error answer) with the connection dropped past it.
import { inspect } from "node:util";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { AnnotationsHttpError, AnnotationsUnavailableError, createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { id, path, record, TOKEN, useAnnotationsClientFixture } from "./helpers/annotations-client.ts";
import { startServer } from "./helpers/http-server.ts";

const { failure } = useAnnotationsClientFixture();

describe("what the service sends slowly or badly", () => {
  it("a body that stalls after the headers fails within the call's deadline, as unavailable", async () => {
    const stalling = await startServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"Id":"6a9b');
    });
    try {
      const client = createAnnotationsClient({ baseUrl: stalling.url, token: TOKEN, timeoutMs: 200, totalTimeoutMs: 500, retry: false });
      const error = await client.media.get(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect((error as Error).message).toMatch(/^GET \/api\/media\/6a9b7ce7844aa871: the response body did not arrive in time \(\d+ ms\)$/);
    } finally {
      await stalling.close();
    }
  });

  it("a token with a line break is refused before any request, and the error never holds it", async () => {
    let requests = 0;
    const counting = await startServer((_, response) => {
      requests += 1;
      response.writeHead(204).end();
    });
    try {
      const secret = `${TOKEN}\r\nX-Injected: 1`;
      const client = createAnnotationsClient({ baseUrl: counting.url, retry: false });
      const error = await client.media.updateStatus(id, MediaStatus.AIProcessing, { token: secret }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(`The bearer token for PUT /api/media/${id}/status holds a control character (a line break?); it cannot be sent in a header.`);
      expect(inspect(error, { depth: 10 })).not.toContain(TOKEN);
      expect(requests).toBe(0);
    } finally {
      await counting.close();
    }
  });
});

describe("response bodies are read up to 1 MiB", () => {
  const MiB = 1024 * 1024;
  const unnamed = JSON.stringify({ ...record, name: "", mediaStatus: 1 }).length;
  /** A record whose name pads its JSON to exactly `bytes` bytes. */
  function recordOf(bytes: number): string {
    return JSON.stringify({ ...record, name: "a".repeat(bytes - unnamed), mediaStatus: 1 });
  }

  /**
   * A service whose GET answers 503 `failures` times, then 200 with a body without end
   * (chunked, as fast as the client reads). `closed` resolves, with the bytes it wrote, once
   * the client has dropped the connection.
   */
  async function endlessService(failures: number) {
    let requests = 0;
    let written = 0;
    let dropped: (bytes: number) => void = () => {};
    const closed = new Promise<number>((resolve) => (dropped = resolve));
    const service = await startServer((_, response) => {
      requests += 1;
      if (requests <= failures) return void response.writeHead(503).end();
      response.writeHead(200, { "content-type": "application/json" });
      response.on("close", () => dropped(written));
      response.write('{"Id":"6a9b7ce7844aa871","Name":"');
      const chunk = Buffer.alloc(64 * 1024, "a");
      const pump = () => {
        while (!response.destroyed) {
          written += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
      };
      pump();
    });
    return { ...service, closed };
  }

  it.each([
    ["the first attempt", 0],
    ["a retry", 1],
  ])("a body without end, on %s, fails as unavailable once past 1 MiB, and the connection is dropped", async (_, failures) => {
    const service = await endlessService(failures);
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: { retries: 1, baseDelayMs: 1 } }).media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB${failures ? " (after 2 attempts)" : ""}`);
      // The service went on past the limit; the client stopped reading near it (what the
      // service wrote beyond sat in socket buffers) and hung up.
      const written = await service.closed;
      expect(written).toBeGreaterThan(MiB);
      expect(written).toBeLessThan(32 * MiB);
    } finally {
      await service.close();
    }
  });

  it.each([
    ["with", true],
    ["without", false],
  ])("reads a body of exactly 1 MiB and refuses one byte more, %s Content-Length", async (_, declared) => {
    let size = MiB;
    const service = await startServer((_, response) => {
      const body = recordOf(size);
      response.writeHead(200, declared ? { "content-type": "application/json", "content-length": body.length } : { "content-type": "application/json" });
      if (declared) return void response.end(body);
      // Chunked: Node sends no Content-Length for a body written in parts.
      response.write(body.slice(0, 10));
      response.end(body.slice(10));
    });
    try {
      const annotations = createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false });
      expect((await annotations.media.get(id)).name).toHaveLength(MiB - unnamed);
      size = MiB + 1;
      const error = await failure(annotations.media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB`);
    } finally {
      await service.close();
    }
  });

  it("a 201 to a POST whose body is over 1 MiB is an unknown outcome (the record may exist), refused unread", async () => {
    const service = await startServer((_, response) => {
      const body = recordOf(2 * MiB);
      // Only the start is sent: a client that waited for the rest would fail on its timeout.
      response.writeHead(201, { "content-type": "application/json", "content-length": body.length }).write(body.slice(0, 1024));
    });
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.create(record));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe("POST /api/media: the response body is over 1 MiB");
    } finally {
      await service.close();
    }
  });

  it("an error answer whose body is over 1 MiB keeps its status, without the body", async () => {
    const service = await startServer((_, response) => {
      const body = JSON.stringify({ title: "x".repeat(2 * MiB) });
      response.writeHead(400, { "content-type": "application/problem+json", "content-length": body.length }).end(body);
    });
    try {
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.create(record));
      expect(error).toBeInstanceOf(AnnotationsHttpError);
      expect(error.message).toBe("POST /api/media: 400 Bad Request");
    } finally {
      await service.close();
    }
  });

  it("a compressed body is limited by its size once inflated, not by its Content-Length", async () => {
    const zipped = gzipSync(recordOf(8 * MiB));
    const service = await startServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": zipped.length }).end(zipped);
    });
    try {
      expect(zipped.length).toBeLessThan(MiB);
      const error = await failure(createAnnotationsClient({ baseUrl: service.url, token: TOKEN, retry: false }).media.get(id));
      expect(error).toBeInstanceOf(AnnotationsUnavailableError);
      expect(error.message).toBe(`GET ${path}: the response body is over 1 MiB`);
    } finally {
      await service.close();
    }
  });
});
