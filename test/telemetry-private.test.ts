// What a failure puts in a trace (docs/observability.md "What is never recorded"): what the error
// is (its type, and the library's stable code), never its message, which names the uploader's
// file, the storage folder and whatever the annotations service echoed. Uploads with a distinctive
// file name into a distinctive folder, for a distinctive user, failing every way an upload fails:
// a type not supported, bytes that are not what the name says, too large, a full disk and a
// read-only one (a real tmpfs), a record the service refuses while echoing what it was sent
// (through the stream intake and through tus), and a detector that names the file in its error.
import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { SpanStatusCode } from "@opentelemetry/api";
import { Upload } from "tus-js-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { createAnnotationsClient, intakeMedia, type StorageDirectories, trackMediaProcessing } from "../src/index.ts";
import { createTusIntake } from "../src/tus/index.ts";
import { createFakeAnnotations, type FakeRequest } from "./helpers/fake-annotations.ts";
import { signToken } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";
import { registerInMemorySdk } from "./helpers/otel.ts";
import { mountSmallTmpfs, type SmallTmpfs } from "./helpers/tmpfs.ts";

const NAME = "Holiday-Kp4Wm2Lq";
const FOLDER = "Vault-Qx7Zr93";
const USER = "user-Zb8Tn5Rw";
const secret = "p".repeat(32);

let sdk: ReturnType<typeof registerInMemorySdk>;
let disk: SmallTmpfs;
beforeAll(async () => {
  sdk = registerInMemorySdk();
  disk = await mountSmallTmpfs(16 * 2 ** 20);
});
afterAll(async () => {
  await sdk.shutdown();
  await disk?.unmount();
});

/**
 * The annotations service: the fake's contract, but a create whose name asks for it is refused
 * with a problem body that echoes the name, the path and the user it was sent (as a validating
 * service may), and the later read answers 404 (no record relies on the file).
 */
async function startEchoingAnnotations() {
  const fake = createFakeAnnotations();
  return startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const seen: FakeRequest = { method: req.method ?? "GET", path: new URL(req.url ?? "/", "http://x").pathname, authorization: req.headers.authorization ?? null, body: Buffer.concat(chunks).toString("utf8") };
      const sent = seen.method === "POST" && seen.body ? (JSON.parse(seen.body) as { Name?: string; Path?: string; UserId?: string }) : {};
      if (sent.Name?.includes("refuse-me")) {
        const problem = { title: "One or more validation errors occurred.", status: 422, detail: `${sent.Name} at ${sent.Path} by ${sent.UserId}: refused.`, errors: { Name: [`"${sent.Name}" is not allowed.`] } };
        return void res.writeHead(422, { "content-type": "application/problem+json" }).end(JSON.stringify(problem));
      }
      const answer = fake.handle(seen);
      if (answer.body === undefined) return void res.writeHead(answer.status).end();
      res.writeHead(answer.status, { "content-type": answer.contentType ?? "application/json" }).end(JSON.stringify(answer.body));
    });
  });
}

/** A tus upload of `bytes` as `name` by tus-js-client: its final status. */
function tusUpload(endpoint: string, bytes: Buffer, name: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const upload = new Upload(bytes, {
      endpoint,
      retryDelays: [],
      metadata: { filename: name },
      headers: { authorization: `Bearer ${token}` },
      onSuccess: ({ lastResponse }) => resolve(lastResponse.getStatus()),
      onError: (error) => resolve((error as { originalResponse?: { getStatus(): number } }).originalResponse?.getStatus() ?? 0),
    });
    upload.start();
  });
}

describe("a failing upload's spans", () => {
  it("carry the error's type and code, never the file name, the folder, the token or the user ID", async () => {
    const token = await signToken(USER, secret, "5m");
    const folder = join(disk.path, FOLDER);
    const directories: StorageDirectories = { videosDir: join(folder, "videos"), imagesDir: join(folder, "images") };
    await mkdir(directories.imagesDir, { recursive: true });
    const annotations = await startEchoingAnnotations();
    const client = createAnnotationsClient({ baseUrl: annotations.url, token: "service-token", retry: false });
    const auth = { verify: { secret } };
    const intake = (bytes: Buffer, originalName: string, extra: { maxBytes?: number } = {}) =>
      intakeMedia(Readable.from([bytes]), { originalName, token, auth, client, directories, ...extra }).then(
        () => "stored",
        (error: { code?: string }) => error.code,
      );
    const tus = createTusIntake({ directories, client, auth, sweepIntervalMs: 0 });
    const tusServer = await startServer((req, res) => void tus.handle(req, res));
    let storedId: string;
    try {
      // A success first: what is recorded (the media ID) is found, so the search below can fail.
      const stored = await intakeMedia(Readable.from([samplePng(20, 20, 1)]), { originalName: `${NAME}.png`, token, auth, client, directories });
      storedId = stored.id;
      const failures = [
        await intake(samplePng(), `${NAME}.cjs`),
        await intake(samplePng(), `${NAME}.mp4`),
        await intake(sampleMp4(300_000, 2), `${NAME}.mp4`, { maxBytes: 100_000 }),
        await intake(samplePng(20, 20, 3), `${NAME}-refuse-me.png`),
      ];
      expect(failures).toEqual(["UNSUPPORTED_MEDIA_TYPE", "MEDIA_CONTENT_MISMATCH", "MEDIA_TOO_LARGE", "ANNOTATIONS_HTTP_ERROR"]);
      expect(await tusUpload(`${tusServer.url}/files`, samplePng(20, 20, 4), `${NAME}-refuse-me.png`, token)).toBe(502);
      // A detector's own error class, which keeps Error's name: recorded by its class.
      class DecodeError extends Error {}
      const detect = trackMediaProcessing(
        async (media) => {
          throw new DecodeError(`cannot decode ${media.path} (${NAME}.png)`);
        },
        { client, directories, token },
      );
      await expect(detect(stored)).rejects.toThrow(FOLDER);

      // The disk full, then read-only: the store's errors name the folder and the errno.
      await disk.fillUp(join(disk.path, "filler"), 64 * 1024);
      expect(await intake(sampleMp4(300_000, 5), `${NAME}.mp4`)).toBe("MEDIA_WRITE_FAILED");
      execFileSync("mount", ["-o", "remount,ro", disk.path]);
      expect(await intake(samplePng(20, 20, 6), `${NAME}.png`)).toBe("MEDIA_WRITE_FAILED");
    } finally {
      await tusServer.close();
      await tus.close();
      await annotations.close();
    }

    const spans = sdk.spans.getFinishedSpans();
    const failed = spans.filter((span) => span.status.code === SpanStatusCode.ERROR);
    // The status message is the code (the library's errors) or the type (the detector's).
    expect(new Set(failed.map((span) => span.status.message))).toEqual(
      new Set(["UNSUPPORTED_MEDIA_TYPE", "MEDIA_CONTENT_MISMATCH", "MEDIA_TOO_LARGE", "ANNOTATIONS_HTTP_ERROR", "MEDIA_WRITE_FAILED", "DecodeError"]),
    );
    for (const span of failed) {
      const code = span.attributes["media_intake.error.code"];
      expect(span.status.message).toBe(code ?? "DecodeError");
      expect(span.events.filter((event) => event.name === "exception").map((event) => event.attributes)).toEqual([
        { "exception.type": span.attributes["error.type"], ...(code ? { "media_intake.error.code": code } : {}) },
      ]);
    }
    expect(failed.find((span) => span.name === "media_intake.tus.finish")?.attributes).toMatchObject({ "error.type": "AnnotationsHttpError", "media_intake.error.code": "ANNOTATIONS_HTTP_ERROR" });
    expect(failed.find((span) => span.name === "media_intake.track")?.attributes["error.type"]).toBe("DecodeError");

    const exported = JSON.stringify({
      spans: spans.map((span) => ({ name: span.name, attributes: span.attributes, events: span.events, status: span.status, links: span.links })),
      metrics: await sdk.collect(),
    });
    expect(exported).toContain(storedId);
    for (const secretThing of [NAME, FOLDER, disk.path, USER, token, ...token.split(".")]) expect(exported).not.toContain(secretThing);
  });
});
