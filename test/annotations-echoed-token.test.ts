// An annotations service that echoes the request's Authorization header in its errors (a debug
// page, a proxy): the token it was sent never reaches an error's message or problem, the
// example's /readyz (which needs no token) or its log lines. Our own fake service on loopback.
import type { IncomingMessage, ServerResponse } from "node:http";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { serve } from "../examples/express/serve.ts";
import { samplePng } from "../examples/sample-media.ts";
import { createAnnotationsClient } from "../src/index.ts";
import { defaultSecret, signToken, storageDirectoriesIn } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Answers every request 500 with a problem body that echoes the Authorization header, in its detail, its field errors and its status text. */
async function echoingService(): Promise<string> {
  const started = await startServer((req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization ?? "";
    const body = JSON.stringify({ title: "Internal error", detail: `<b>boom</b> ${auth}; token=${auth.replace(/^Bearer /, "")}`, errors: { [auth]: [`seen ${auth}`] } });
    req.resume();
    res.writeHead(500, `Failed for ${auth}`, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  closers.push(started.close);
  return started.url;
}

/** Whether `text` holds any of the tokens, or a piece of one (a JWT's header, or its payload). */
const leaks = (text: string, tokens: string[]) => tokens.some((token) => token.split(".").some((part) => part.length > 8 && text.includes(part)));

describe("an annotations service that echoes the Authorization header", () => {
  it("the client's errors (first attempt, and through the retries) carry neither the token sent nor any JWT", async () => {
    const url = await echoingService();
    const serviceToken = await signToken("detections-service");
    const userToken = await signToken("alice");
    const opaque = "opaque-service-secret-4711";
    const errors: unknown[] = [];
    for (const retry of [false as const, { retries: 1, baseDelayMs: 1, maxDelayMs: 1 }]) {
      const client = createAnnotationsClient({ baseUrl: url, token: serviceToken, retry });
      errors.push(await client.media.get("0123456789abcdef").catch((error: unknown) => error));
      errors.push(await client.media.get("0123456789abcdef", { token: userToken }).catch((error: unknown) => error));
      errors.push(await createAnnotationsClient({ baseUrl: url, token: opaque, retry }).media.get("0123456789abcdef").catch((error: unknown) => error));
    }
    for (const error of errors) {
      const { message, problem, statusText, status } = error as { message: string; problem: unknown; statusText: string; status: number };
      expect(status).toBe(500);
      // The service's text is still there, only the secrets are gone.
      expect(message).toContain("<b>boom</b> Bearer [redacted]");
      const shown = JSON.stringify({ message, problem, statusText, error });
      expect(leaks(shown, [serviceToken, userToken, opaque])).toBe(false);
      expect(shown).not.toMatch(/eyJ[\w-]{4,}/);
    }
  });

  it("the example's /readyz shows the failing call's status and code, and no log line holds a token, whatever fails", async () => {
    const url = await echoingService();
    const serviceToken = await signToken("detections-service");
    const userToken = await signToken("alice");
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    const client = createAnnotationsClient({ baseUrl: url, token: serviceToken, retry: false, timeoutMs: 1_000 });
    const express = createDetectionsApp({ client, directories: storageDirectoriesIn(await makeTempDir()), auth: { verify: { secret: defaultSecret } }, logger, readiness: { annotationsUrl: url } });
    const app = await serve(express, { host: "127.0.0.1", port: 0, logger: pino({ enabled: false }) });
    closers.push(async () => {
      app.server.closeAllConnections();
      await new Promise((r) => app.server.close(r));
    });

    const ready = await fetch(`${app.url}/readyz`);
    const body = await ready.text();
    expect(ready.status).toBe(503);
    expect(JSON.parse(body).checks.annotations).toEqual({ ok: false, variable: "ANNOTATIONS_URL", message: `ANNOTATIONS_URL (${url}) failed — GET /api/media/0000000000000000 answered 500 (ANNOTATIONS_HTTP_ERROR)` });
    expect(leaks(body, [serviceToken])).toBe(false);

    // An upload whose record cannot be created (multipart and tus): kept, pending, settled in the background.
    const form = new FormData();
    form.append("file", new Blob([samplePng(16, 16, 3) as Uint8Array<ArrayBuffer>]), "a.png");
    const detect = await fetch(`${app.url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${userToken}` } });
    expect(detect.status).toBe(503);
    const png = samplePng(16, 16, 4);
    const tus = await fetch(`${app.url}/files`, {
      method: "POST",
      body: png as Uint8Array<ArrayBuffer>,
      headers: { authorization: `Bearer ${userToken}`, "tus-resumable": "1.0.0", "upload-length": String(png.length), "upload-metadata": `filename ${Buffer.from("b.png").toString("base64")}`, "content-type": "application/offset+octet-stream" },
    });
    expect(tus.status).toBe(503);
    await vi.waitFor(() => expect(lines.join("\n")).toContain("media journal entry not settled yet"), { timeout: 15_000, interval: 20 });
    const log = lines.join("\n");
    // The service's text is logged, its secrets not.
    expect(log).toContain("Bearer [redacted]");
    expect(leaks(log, [serviceToken, userToken])).toBe(false);
    expect(log).not.toMatch(/eyJ[\w-]{4,}/);
  });
});
