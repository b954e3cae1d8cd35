// What the tus endpoint refuses, and when: a bad token, an unsupported type or an Upload-Length
// over maxBytes at creation (before a byte is stored), content that is not what its name says
// after the first chunk, a deferred length once past maxBytes (one within it finishes), any
// Upload-Length that is not plain digits or is more than the uploads volume holds, and an
// uploads directory on another file system than the storage directories.
import { statfs } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient, MediaType } from "../src/index.ts";
import { createTusIntake } from "../src/tus/index.ts";
import { failure, MiB, useTusServer } from "./helpers/tus.ts";

const tusServer = useTusServer();
const { fixture, startTus, closeServer, tusUpload, tusRequest, stored, partials } = tusServer;

describe("createTusIntake", () => {
  it.each([
    ["no token", null, 401, "AUTH_TOKEN_INVALID"],
    ["a token signed with another key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA", 401, "AUTH_TOKEN_INVALID"],
  ])("refuses %s at creation, before a byte is stored", async (_, bad, status, code) => {
    const error = await tusUpload(samplePng(), "a.png", { token: bad }).catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status, code });
    expect(await partials()).toEqual([]);
    expect(fixture.fake.log).toEqual([]);
  });

  it("refuses an unsupported type (415) and an Upload-Length over maxBytes (413) at creation", async () => {
    expect(failure(await tusUpload(Buffer.from("hello"), "notes.txt").catch((e: unknown) => e))).toEqual({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
    await closeServer();
    await startTus({ maxBytes: 1 * MiB });
    expect(failure(await tusUpload(sampleMp4(2 * MiB), "big.mp4").catch((e: unknown) => e))).toEqual({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(await partials()).toEqual([]);
  });

  it("refuses content that is not what its name says after the first chunk, and keeps nothing", async () => {
    const patches: number[] = [];
    tusServer.fault = (req) => {
      if (req.method === "PATCH") patches.push(Number(req.headers["upload-offset"]));
      return false;
    };
    const error = await tusUpload(sampleMp4(12 * MiB), "holiday.jpg").catch((e: unknown) => e);
    expect(failure(error)).toEqual({ status: 415, code: "MEDIA_CONTENT_MISMATCH" });
    expect(patches).toEqual([0]);
    expect(await partials()).toEqual([]);
    expect(await stored()).toEqual([]);
    expect(fixture.fake.log).toEqual([]);
  });

  it("caps a deferred length at maxBytes as the bytes arrive, and keeps nothing", async () => {
    await closeServer();
    await startTus({ maxBytes: 3 * MiB });
    const error = await tusUpload(sampleMp4(8 * MiB), "long.mp4", { deferred: true, chunkSize: 2 * MiB }).catch((e: unknown) => e);
    expect(failure(error)).toMatchObject({ status: 413, code: "MEDIA_TOO_LARGE" });
    expect(await partials()).toEqual([]);
    expect(await stored()).toEqual([]);
  });

  it("a deferred length within the limit finishes like any upload", async () => {
    const png = samplePng(300, 200, 3);
    const done = await tusUpload(png, "cam.png", { deferred: true, chunkSize: 64 * 1024 });
    expect(done.body.media).toMatchObject({ id: await computeMediaId(png), mediaType: MediaType.Image });
  });

  it("one rule for Upload-Length: at most maxBytes and at most what the uploads volume holds, however many digits (413), never 201 for more", async () => {
    const { blocks, bsize } = await statfs(tusServer.tus.uploadsDir);
    const volume = BigInt(blocks) * BigInt(bsize);
    const create = (length: string) => tusRequest(tusServer.endpoint, "POST", fixture.token, { "upload-length": length, "upload-metadata": `filename ${Buffer.from("huge.mp4").toString("base64")}` });
    for (const length of ["100000000000000000000", String(2n ** 53n + 1n), String(2n ** 40n * 1024n), String(volume + 1n)]) {
      const response = await create(length);
      expect(response.status, length).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("MEDIA_TOO_LARGE");
    }
    expect(await partials()).toEqual([]);
    expect((await create(String(volume))).status).toBe(201);
    for (const length of ["12x", "-1", "1e3", "0x10", "1.5", "12, 13", "00100", "+100"]) {
      const response = await create(length);
      expect(response.status, length).toBe(400);
      expect(response.headers.get("content-type"), length).toMatch(/^application\/json/);
      expect(((await response.json()) as { error: { code: string; message: string } }).error, length).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^Upload-Length .* is not a length/) });
    }
    await closeServer();
    await startTus({ maxBytes: 5 * MiB });
    expect((await create(String(5 * MiB + 1))).status).toBe(413);
    expect((await create(String(5 * MiB))).status).toBe(201);
  });

  it("refuses an uploads directory on another file system than the storage directories", async () => {
    expect(() => createTusIntake({ directories: fixture.directories, client: createAnnotationsClient({ baseUrl: fixture.service.url }), uploadsDir: "/dev/shm/media-intake-test-uploads" })).toThrow(
      /createTusIntake: expected `uploadsDir` \(\/dev\/shm\/media-intake-test-uploads\) on the same file system as `videosDir`/,
    );
  });
});
