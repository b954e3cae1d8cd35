// One rule per outcome, whichever entry point an upload comes through (docs/observability.md
// `media_intake.outcome`): an upload refused for its size is `refused` through the stream intake,
// multer (its own fileSize limit or the intake's maxBytes) and tus (at creation, and at a PATCH
// past the limit or past the declared length); a client that goes away mid-upload is `aborted`
// through the stream intake and multer. Real HTTP servers on loopback, an in-memory SDK.
import { request as httpRequest } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { httpErrorFor, intakeMedia, MediaTooLargeError } from "../src/index.ts";
import { type MediaIntakeStorageOptions, mediaIntakeStorage } from "../src/multer/index.ts";
import { startServer } from "./helpers/http-server.ts";
import { filesUnder } from "./helpers/temp-dir.ts";
import { type MetricPoint, pointOf, registerInMemorySdk } from "./helpers/otel.ts";
import { failure, MiB, useTusServer } from "./helpers/tus.ts";

const tusServer = useTusServer();
const { fixture, startTus, closeServer, tusUpload, tusRequest, partials } = tusServer;

let sdk: ReturnType<typeof registerInMemorySdk>;
beforeAll(() => {
  sdk = registerInMemorySdk();
});
afterAll(() => sdk.shutdown());
beforeEach(async () => {
  sdk.spans.reset();
  await sdk.resetMetrics();
});

/** The uploads counted, as `outcome/intake` → count. */
const uploadsCounted = (points: MetricPoint[]) =>
  Object.fromEntries(points.filter((point) => point.name === "media_intake.uploads").map((point) => [`${point.attributes["media_intake.outcome"]}/${point.attributes["media_intake.intake"]}`, point.value]));

/** An Express app whose `POST /upload` takes one file through multer and the engine, and answers errors as the example does (multer's limit a 413). */
async function startMulterApp(options: Partial<MediaIntakeStorageOptions> & { fileSize?: number; onFile?: () => void } = {}) {
  const { default: express } = await import("express");
  const { default: multer } = await import("multer");
  const { fileSize, onFile, ...engineOptions } = options;
  const engine = mediaIntakeStorage({ client: fixture.client({ retry: false }), directories: fixture.directories, ...engineOptions });
  const storage = {
    _handleFile: (...args: Parameters<typeof engine._handleFile>) => {
      onFile?.();
      engine._handleFile(...args);
    },
    _removeFile: engine._removeFile,
  };
  const app = express();
  app.post("/upload", multer({ storage, limits: { files: 1, ...(fileSize ? { fileSize } : {}) } }).single("file"), (req, res) => void res.json(req.file?.media));
  app.use((error: unknown, _req: unknown, res: { status(code: number): { json(body: unknown): void } }, _next: unknown) => {
    const answer = httpErrorFor((error as { code?: unknown }).code === "LIMIT_FILE_SIZE" && fileSize ? new MediaTooLargeError("", fileSize) : error);
    res.status(answer.status).json({ error: { code: answer.code } });
  });
  return startServer((req, res) => void app(req, res));
}

const formWith = (bytes: Buffer, name: string) => {
  const form = new FormData();
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  return form;
};

describe("an upload refused for its size", () => {
  it("is refused through the stream intake", async () => {
    const error = await intakeMedia(Readable.from([sampleMp4(300_000, 1)]), { originalName: "big.mp4", token: fixture.token, client: fixture.client({ retry: false }), directories: fixture.directories, maxBytes: 100_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaTooLargeError);
    expect(uploadsCounted(await sdk.collect())).toEqual({ "refused/stream": 1 });
  });

  it("is refused through multer, at multer's fileSize limit as at the intake's maxBytes", async () => {
    for (const limits of [{ fileSize: 100_000 }, { maxBytes: 100_000 }]) {
      sdk.spans.reset();
      const app = await startMulterApp(limits);
      try {
        const response = await fetch(`${app.url}/upload`, { method: "POST", body: formWith(sampleMp4(300_000, 2), "big.mp4"), headers: { authorization: `Bearer ${fixture.token}` } });
        expect(response.status, JSON.stringify(limits)).toBe(413);
        // The intake's span ends once its store has stopped: the answer may come first.
        const span = await sdk.spans.waitFor((s) => s.name === "media_intake.intake");
        expect(span.attributes["media_intake.outcome"], JSON.stringify(limits)).toBe("refused");
      } finally {
        await app.close();
      }
    }
    expect(uploadsCounted(await sdk.collect())).toEqual({ "refused/multer": 2 });
  });

  it("is refused through tus: an Upload-Length over the limit at creation, a deferred length past it, bytes past the declared length", async () => {
    await closeServer();
    await startTus({ maxBytes: 1 * MiB });
    // At creation: 413 before a byte is stored.
    expect(failure(await tusUpload(sampleMp4(2 * MiB, 3), "big.mp4").catch((e: unknown) => e))).toEqual({ status: 413, code: "MEDIA_TOO_LARGE" });
    // A deferred length: 413 at the PATCH that passes the limit, the upload removed.
    expect(failure(await tusUpload(sampleMp4(2 * MiB, 4), "long.mp4", { deferred: true, chunkSize: 768 * 1024, retryDelays: [] }).catch((e: unknown) => e))).toMatchObject({ status: 413 });
    // A PATCH carrying more than the Upload-Length the creation declared.
    const metadata = `filename ${Buffer.from("short.mp4").toString("base64")}`;
    const created = await tusRequest(tusServer.endpoint, "POST", fixture.token, { "upload-length": "5000", "upload-metadata": metadata });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get("location") ?? "", tusServer.endpoint).href;
    const patched = await tusRequest(url, "PATCH", fixture.token, { "upload-offset": "0", "content-type": "application/offset+octet-stream" }, sampleMp4(10_000, 5));
    expect(patched.status).toBe(413);
    expect(await partials()).toEqual([]);

    const points = await sdk.collect();
    expect(uploadsCounted(points)).toEqual({ "refused/tus": 3 });
    expect((pointOf(points, "media_intake.upload.duration", { "media_intake.outcome": "refused", "media_intake.intake": "tus" }) as { count: number }).count).toBe(3);
    // No intake ran: the refusals are counted, not traced.
    expect(sdk.spans.getFinishedSpans().filter((span) => span.name.startsWith("media_intake."))).toEqual([]);
  });

  it("a tus upload within the limit is counted once, created, not refused", async () => {
    await closeServer();
    await startTus({ maxBytes: 1 * MiB });
    const done = await tusUpload(samplePng(200, 100, 6), "fits.png", { deferred: true, chunkSize: 64 * 1024 });
    expect(done.status).toBe(200);
    expect(uploadsCounted(await sdk.collect())).toEqual({ "created/tus": 1 });
  });
});

/**
 * Sends the start of an upload of `name` (a multipart form's, or the bare bytes), `first` bytes of
 * a body announced far longer, then cuts the connection once `started` resolves (the server is
 * taking the file). Resolves when the client side is closed.
 */
async function cutMidUpload(url: string, name: string, first: Buffer, started: Promise<void>, form: boolean): Promise<void> {
  const boundary = "----cut-mid-upload";
  const head = form ? Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`) : Buffer.alloc(0);
  const request = httpRequest(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${fixture.token}`,
      "content-type": form ? `multipart/form-data; boundary=${boundary}` : "application/octet-stream",
      "content-length": String(head.length + 50 * MiB),
    },
  });
  request.on("error", () => {});
  request.write(Buffer.concat([head, first]));
  await started;
  await new Promise<void>((resolve) => {
    request.once("close", resolve);
    request.destroy();
  });
}

describe("a client that goes away mid-upload", () => {
  it("is aborted through the stream intake and through multer, and nothing is stored", async () => {
    // The stream intake as a host wires it: the request's body, and a signal for a client that leaves.
    let streamStarted!: () => void;
    const streamStarting = new Promise<void>((resolve) => (streamStarted = resolve));
    const streamApp = await startServer((req: IncomingMessage, res: ServerResponse) => {
      const controller = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) controller.abort(new Error("the client disconnected"));
      });
      void intakeMedia(req, { originalName: "cut.mp4", token: fixture.token, client: fixture.client({ retry: false }), directories: fixture.directories, signal: controller.signal, onProgress: () => streamStarted() }).then(
        () => res.end(),
        () => res.destroy(),
      );
    });
    let multerStarted!: () => void;
    const multerStarting = new Promise<void>((resolve) => (multerStarted = resolve));
    const multerApp = await startMulterApp({ onFile: () => multerStarted() });
    try {
      await cutMidUpload(`${streamApp.url}/upload`, "cut.mp4", sampleMp4(4 * MiB, 7).subarray(0, 256 * 1024), streamStarting, false);
      await sdk.spans.waitFor((span) => span.name === "media_intake.intake" && span.attributes["media_intake.intake"] === "stream");
      await cutMidUpload(`${multerApp.url}/upload`, "cut.mp4", sampleMp4(4 * MiB, 8).subarray(0, 256 * 1024), multerStarting, true);
      await sdk.spans.waitFor((span) => span.name === "media_intake.intake" && span.attributes["media_intake.intake"] === "multer");
    } finally {
      await streamApp.close();
      await multerApp.close();
    }
    const intakes = sdk.spans.getFinishedSpans().filter((span) => span.name === "media_intake.intake");
    expect(intakes.map((span) => [span.attributes["media_intake.intake"], span.attributes["media_intake.outcome"]])).toEqual([
      ["stream", "aborted"],
      ["multer", "aborted"],
    ]);
    expect(uploadsCounted(await sdk.collect())).toEqual({ "aborted/stream": 1, "aborted/multer": 1 });
    // Neither the media nor a temp file: the store removed what it had written.
    expect(await filesUnder(fixture.root)).toEqual([]);
  });
});
