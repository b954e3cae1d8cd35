// The tus finish path does its name work once: the media type resolved once, the extension taken
// once and the display name sanitised once, per finished upload (issue 19). Counted with spies
// around the real functions (calls between modules: what one module does inside is not seen).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { intakeMedia, MediaType } from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";

const calls = vi.hoisted(() => ({ resolveMediaType: 0, fileExtension: 0, sanitizeMediaName: 0 }));

vi.mock("../src/media-type/resolve.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/media-type/resolve.ts")>();
  return {
    ...actual,
    resolveMediaType: (...args: Parameters<typeof actual.resolveMediaType>) => {
      calls.resolveMediaType += 1;
      return actual.resolveMediaType(...args);
    },
    fileExtension: (...args: Parameters<typeof actual.fileExtension>) => {
      calls.fileExtension += 1;
      return actual.fileExtension(...args);
    },
  };
});
vi.mock("../src/storage/name.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/storage/name.ts")>();
  return {
    ...actual,
    sanitizeMediaName: (...args: Parameters<typeof actual.sanitizeMediaName>) => {
      calls.sanitizeMediaName += 1;
      return actual.sanitizeMediaName(...args);
    },
  };
});

const secret = "k".repeat(32);
let tus: TusIntake;
let endpoint: string;
let closeServer: () => Promise<void>;

const fixture = useFaultFixture({ sub: "alice", secret });

beforeEach(async () => {
  const client = fixture.client({ retry: false });
  tus = createTusIntake({ directories: fixture.directories, client, auth: { verify: { secret } }, sweepIntervalMs: 0 });
  const started = await startServer((req, res) => void tus.handle(req, res));
  endpoint = `${started.url}/files`;
  closeServer = started.close;
});
afterEach(async () => {
  await closeServer();
  await tus.close();
});

const tusHeaders = () => ({ "Tus-Resumable": "1.0.0", authorization: `Bearer ${fixture.token}` });

/** Creates an upload of `bytes` named `name`, sends all but its last byte, and returns its URL. */
async function uploadAllButLastByte(bytes: Buffer, name: string): Promise<string> {
  const created = await fetch(endpoint, {
    method: "POST",
    headers: { ...tusHeaders(), "Upload-Length": String(bytes.length), "Upload-Metadata": `filename ${Buffer.from(name).toString("base64")}` },
  });
  expect(created.status).toBe(201);
  const url = new URL(created.headers.get("location") ?? "", endpoint).href;
  const first = await fetch(url, {
    method: "PATCH",
    headers: { ...tusHeaders(), "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" },
    body: new Uint8Array(bytes.subarray(0, bytes.length - 1)),
  });
  expect(first.status).toBe(204);
  return url;
}

describe("the tus finish path", () => {
  it("resolves the media type and the display name once per finished upload", async () => {
    const bytes = sampleMp4(64 * 1024);
    const url = await uploadAllButLastByte(bytes, "Holiday Clip.MP4");
    calls.resolveMediaType = 0;
    calls.fileExtension = 0;
    calls.sanitizeMediaName = 0;
    // The last byte: its PATCH writes it (no content check, that was done) and finishes the upload.
    const last = await fetch(url, {
      method: "PATCH",
      headers: { ...tusHeaders(), "Upload-Offset": String(bytes.length - 1), "Content-Type": "application/offset+octet-stream" },
      body: new Uint8Array(bytes.subarray(bytes.length - 1)),
    });
    expect(last.status).toBe(200);
    const { media } = (await last.json()) as { media: { id: string; name: string; mediaType: number; path: string } };
    expect(media).toMatchObject({ name: "Holiday Clip.MP4", mediaType: MediaType.Video });
    expect(media.path.endsWith(`${media.id}.mp4`)).toBe(true);
    expect(fixture.fake.records.size).toBe(1);
    // Before issue 19: { resolveMediaType: 2, fileExtension: 3, sanitizeMediaName: 2 }.
    expect(calls).toEqual({ resolveMediaType: 1, fileExtension: 1, sanitizeMediaName: 1 });
  });

  it("intakeMedia, on the same path through the store, resolves them once per upload too", async () => {
    const client = fixture.client({ retry: false });
    const bytes = sampleMp4(64 * 1024, 1);
    calls.resolveMediaType = 0;
    calls.fileExtension = 0;
    calls.sanitizeMediaName = 0;
    const media = await intakeMedia(bytes, { originalName: "Other Clip.mov", token: fixture.token, client, directories: fixture.directories, auth: { verify: { secret } } });
    expect(media).toMatchObject({ name: "Other Clip.mov", mediaType: MediaType.Video, created: true });
    expect(media.path.endsWith(`${media.id}.mov`)).toBe(true);
    expect(calls).toEqual({ resolveMediaType: 1, fileExtension: 1, sanitizeMediaName: 1 });
  });
});
