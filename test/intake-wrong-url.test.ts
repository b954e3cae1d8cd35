// An uploaded file is removed after a refusal only when the annotations service has said, in the
// contract's words, that no record relies on it: a 404 with a problem body. An ANNOTATIONS_URL
// with a wrong path (`…/api/media` included, against the dev server), a 404 without a problem
// body, a 405, or a refusal that is not the contract's (a 400 with no problem body) keep the file
// pending, as in an outage. A file that goes is logged, with why, through the caller's logger.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import {
  AnnotationsHttpError,
  AnnotationsRouteMissingError,
  computeMediaId,
  createAnnotationsClient,
  httpErrorFor,
  intakeMedia,
  MediaRecordPendingError,
  recoverInterrupted,
} from "../src/index.ts";
import { useDevFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";

const secret = "s".repeat(32);
const dev = useDevFixture({ secret });

/** A logger that keeps its lines. */
function keptLines() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string | undefined }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, message?: string) => void lines.push({ level, fields, message });
  return { lines, logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } };
}

type Answer = [number, string, string];

/** An annotations service of ours: the create and the read answer as given (status, content type, body), the read as `read()` says at the time. */
async function answering(create: Answer, read: Answer | (() => Answer)) {
  const server = await startServer((request, response) => {
    request.resume();
    const [status, type, body] = request.method === "POST" ? create : typeof read === "function" ? read() : read;
    request.on("end", () => response.writeHead(status, { "content-type": type }).end(body));
  });
  return server;
}

const problem = (status: number, title: string) => ["application/problem+json", JSON.stringify({ type: "about:blank", title, status })] as const;

describe("an ANNOTATIONS_URL with /api/media in it, against the dev server", () => {
  it("a re-upload of stored content keeps the file the record names: 503 pending, never removed", async () => {
    const right = createAnnotationsClient({ baseUrl: dev.annotations.url, token: dev.serviceToken, retry: false });
    const wrong = createAnnotationsClient({ baseUrl: `${dev.annotations.url}/api/media`, token: dev.serviceToken, retry: false });
    const mp4 = sampleMp4(120_000, 21);
    const first = await intakeMedia(mp4, { originalName: "c.mp4", token: dev.token, client: right, directories: dev.directories });

    const { lines, logger } = keptLines();
    const error = await intakeMedia(mp4, { originalName: "c.mp4", token: dev.token, client: wrong, directories: dev.directories, logger }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    expect((error as MediaRecordPendingError).cause).toBeInstanceOf(AnnotationsRouteMissingError);
    expect(httpErrorFor(error)).toMatchObject({ status: 503, code: "MEDIA_RECORD_PENDING", mediaId: first.id });
    expect(existsSync(first.path)).toBe(true);
    expect((await right.media.get(first.id)).path).toBe(first.path);
    expect(lines.some((line) => line.level === "error" && String(line.message).includes("no route POST /api/media"))).toBe(true);
    // A settling pass through the wrong URL cannot tell, so it keeps everything.
    const report = await recoverInterrupted({ client: wrong, directories: dev.directories });
    expect(report.filesRemoved).toEqual([]);
    expect(existsSync(first.path)).toBe(true);
  });

  it("new content is kept pending, and its record lands once the URL is fixed", async () => {
    const wrong = createAnnotationsClient({ baseUrl: `${dev.annotations.url}/api/media`, token: dev.serviceToken, retry: false });
    const png = samplePng(30, 20, 22);
    const id = await computeMediaId(png);
    const error = await intakeMedia(png, { originalName: "n.png", token: dev.token, client: wrong, directories: dev.directories }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaRecordPendingError);
    const kept = join(dev.directories.imagesDir, `${id}.png`);
    expect(existsSync(kept)).toBe(true);

    const right = createAnnotationsClient({ baseUrl: dev.annotations.url, token: dev.serviceToken, retry: false });
    const report = await recoverInterrupted({ client: right, directories: dev.directories });
    expect(report.recordsCreated).toEqual([id]);
    expect(await right.media.get(id)).toMatchObject({ path: kept, userId: "alice" });
    expect(existsSync(kept)).toBe(true);
  });
});

describe("a refused create removes the file only on the contract's 'no such media'", () => {
  const refused: Answer = [400, ...problem(400, "One or more validation errors occurred.")];

  it.each([
    ["a 404 without a problem body (a router's)", [404, "text/plain", "Not Found"]],
    ["an HTML 404", [404, "text/html", "<h1>Not Found</h1>"]],
    ["a 404 whose JSON is no problem body", [404, "application/json", JSON.stringify({ message: "nope" })]],
    ["a 405", [405, ...problem(405, "Method Not Allowed")]],
  ] as Array<[string, Answer]>)("the read answering %s keeps the file, now and in every settling pass", async (_, read) => {
    const service = await answering(refused, read);
    try {
      const client = createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false });
      const png = samplePng(20, 20, 23);
      const path = join(dev.directories.imagesDir, `${await computeMediaId(png)}.png`);
      const error = await intakeMedia(png, { originalName: "r.png", token: dev.token, client, directories: dev.directories }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsHttpError);
      expect(existsSync(path)).toBe(true);
      const report = await recoverInterrupted({ client, directories: dev.directories });
      expect(report.filesRemoved).toEqual([]);
      expect(report.failed).toHaveLength(1);
      expect(existsSync(path)).toBe(true);
    } finally {
      await service.close();
    }
  });

  it("a 400 without a problem body is no refusal of the contract's: the upload is kept pending", async () => {
    const service = await answering([400, "text/html", "<h1>Bad Request</h1>"], [404, ...problem(404, "Not Found")]);
    try {
      const client = createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false });
      const png = samplePng(20, 20, 24);
      const error = await intakeMedia(png, { originalName: "r.png", token: dev.token, client, directories: dev.directories }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaRecordPendingError);
      expect(httpErrorFor(error)).toMatchObject({ status: 503, mediaId: await computeMediaId(png) });
      expect(existsSync((error as MediaRecordPendingError).path)).toBe(true);
      // A settling pass that meets it again keeps it too.
      const report = await recoverInterrupted({ client, directories: dev.directories });
      expect(report).toMatchObject({ filesRemoved: [], recordsCreated: [] });
      expect(report.failed).toHaveLength(1);
      expect(existsSync((error as MediaRecordPendingError).path)).toBe(true);
    } finally {
      await service.close();
    }
  });

  it("a refusal with a problem body, and the contract's 404 on the read: the file goes, and the log says which and why", async () => {
    const service = await answering(refused, [404, ...problem(404, "Not Found")]);
    try {
      const client = createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false });
      const png = samplePng(20, 20, 25);
      const id = await computeMediaId(png);
      const { lines, logger } = keptLines();
      const error = await intakeMedia(png, { originalName: "r.png", token: dev.token, client, directories: dev.directories, logger }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsHttpError);
      const path = join(dev.directories.imagesDir, `${id}.png`);
      expect(existsSync(path)).toBe(false);
      const removal = lines.filter((line) => line.fields.id === id && line.fields.path === path);
      expect(removal).toEqual([
        {
          level: "warn",
          fields: expect.objectContaining({ id, path, error: expect.stringContaining("POST /api/media: 400 Bad Request") }),
          message: expect.stringContaining("removed"),
        },
      ]);
    } finally {
      await service.close();
    }
  });
});

describe("a refused create whose read failed: settled in the background", () => {
  it("the file stays while the read fails, and goes once the service says 'no such media', logged through the settling's logger", async () => {
    let read: Answer = [503, ...problem(503, "Service Unavailable")];
    const service = await answering([422, ...problem(422, "Name taken")], () => read);
    try {
      const client = createAnnotationsClient({ baseUrl: service.url, token: "service-token", retry: false });
      const png = samplePng(20, 20, 26);
      const id = await computeMediaId(png);
      const path = join(dev.directories.imagesDir, `${id}.png`);
      // The intake's logger is its background settling's too: whichever pass removes the file logs it.
      const { lines, logger } = keptLines();
      const error = await intakeMedia(png, { originalName: "r.png", token: dev.token, client, directories: dev.directories, logger }).catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 422 });
      expect(existsSync(path)).toBe(true);
      expect(lines.some((line) => line.fields.path === path)).toBe(false);

      read = [404, ...problem(404, "Not Found")];
      // Passes over a journal run one at a time: once this one is over, the file is settled.
      await recoverInterrupted({ client, directories: dev.directories, logger });
      expect(existsSync(path)).toBe(false);
      expect(lines.filter((line) => line.fields.path === path)).toEqual([
        { level: "warn", fields: expect.objectContaining({ id, path, error: expect.stringContaining("refused") }), message: expect.stringContaining("removed") },
      ]);
    } finally {
      await service.close();
    }
  });
});
