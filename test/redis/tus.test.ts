// Two processes serving one tus endpoint on one Redis locker: the PATCHes of one upload, sent to
// both, take turns. A half-open PATCH on one process (a client that lost its link and resumed
// elsewhere) is asked to let go when the other process takes the upload, and the upload ends whole.
import { request } from "node:http";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Upload } from "tus-js-client";
import { beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { sampleMp4 } from "../../examples/sample-media.ts";
import { computeMediaId, type StorageDirectories } from "../../src/index.ts";
import { startChild } from "../helpers/child.ts";
import type { FakeAnnotations } from "../helpers/fake-annotations.ts";
import { startFaultFixture } from "../helpers/fixture.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { readFile } from "node:fs/promises";

const secret = "k".repeat(32);
const MiB = 2 ** 20;
let directories: StorageDirectories;
let fake: FakeAnnotations;
let token: string;
let servers: string[];

beforeEach(async () => {
  let service: { url: string; close: () => Promise<void> };
  ({ directories, fake, service, token } = await startFaultFixture(() => undefined, { sub: "alice", secret }));
  onTestFinished(() => service.close());
  const redisUrl = (await startRedisServer()).url;
  servers = await Promise.all(
    [1, 2].map(async () => {
      const child = startChild(resolve(import.meta.dirname, "../fixtures/tus-child.ts"), { directories, annotationsUrl: service.url, secret, redisUrl });
      return (await child.match(/^LISTENING (.+)$/))[1] as string;
    }),
  );
});

describe("tus on two processes with the Redis locker", () => {
  it("a half-open PATCH on one process lets go when a resume on the other takes the upload; the upload ends whole", async () => {
    const mp4 = sampleMp4(24 * MiB, 4);
    const [a, b] = servers as [string, string];
    const headers = { "tus-resumable": "1.0.0", authorization: `Bearer ${token}` };
    const created = await fetch(`${a}/files`, { method: "POST", headers: { ...headers, "upload-length": String(mp4.length), "upload-metadata": `filename ${Buffer.from("field.mp4").toString("base64")}` } });
    expect(created.status).toBe(201);
    const path = created.headers.get("location") as string;
    const uploadFile = join(directories.videosDir, ".media-intake-uploads", path.split("/").pop() as string);

    // The old connection: 2 MiB of the body to process A, then silence (never ended by the client).
    const halfOpen = request(`${a}${path}`, { method: "PATCH", headers: { ...headers, "upload-offset": "0", "content-type": "application/offset+octet-stream", "content-length": String(mp4.length) } });
    // What the test sees, in the order it sees it: no clocks compared.
    const seen: string[] = [];
    const answered = new Promise<number | "closed">((done) => {
      const ended = (how: number | "closed") => {
        if (!seen.includes("old request ended")) seen.push("old request ended");
        done(how);
      };
      halfOpen.on("response", (response) => ended(response.statusCode ?? 0));
      halfOpen.on("error", () => ended("closed"));
    });
    halfOpen.write(mp4.subarray(0, 2 * MiB));
    await vi.waitFor(async () => expect((await stat(uploadFile)).size).toBe(2 * MiB), { timeout: 10_000, interval: 20 });

    // The client resumes on process B: B takes the lock only once A has let go of it.
    const done = new Promise<{ status: number; body: string }>((resolveDone, reject) => {
      const upload = new Upload(mp4, {
        uploadUrl: `${b}${path}`,
        chunkSize: 4 * MiB,
        retryDelays: [0, 100, 200, 400],
        headers: { authorization: `Bearer ${token}` },
        onSuccess: ({ lastResponse }) => {
          seen.push("resumed upload finished");
          resolveDone({ status: lastResponse.getStatus(), body: lastResponse.getBody() as string });
        },
        onError: reject,
      });
      upload.start();
    });
    const [oldAnswer, final] = await Promise.all([answered, done]);
    halfOpen.destroy();
    // The half-open request was ended by the takeover, before the resumed upload finished.
    expect(oldAnswer === "closed" || oldAnswer < 300 || oldAnswer === 400).toBe(true);
    expect(seen).toEqual(["old request ended", "resumed upload finished"]);
    expect(final.status).toBe(200);
    const id = await computeMediaId(mp4);
    const media = (JSON.parse(final.body) as { media: { id: string; path: string } }).media;
    expect(media.id).toBe(id);
    expect((await readFile(media.path)).equals(mp4)).toBe(true);
    expect(fake.records.get(id)).toMatchObject({ userId: "alice", path: media.path });
    expect(fake.log.filter((r) => r.method === "POST")).toHaveLength(1);
  });

  it("chunks of one upload sent alternately to both processes end in one whole file and one record", async () => {
    const mp4 = sampleMp4(12 * MiB, 9);
    let url = "";
    // Each chunk goes to the other process: a load balancer without affinity.
    let turn = 0;
    const done = await new Promise<{ body: string }>((resolveDone, reject) => {
      const upload = new Upload(mp4, {
        endpoint: `${servers[0]}/files`,
        chunkSize: 1 * MiB,
        retryDelays: [0, 100],
        metadata: { filename: "alternating.mp4" },
        headers: { authorization: `Bearer ${token}` },
        onUploadUrlAvailable: () => (url = upload.url ?? ""),
        onBeforeRequest: (req) => {
          if (req.getMethod() !== "PATCH") return;
          const target = servers[turn++ % 2] as string;
          const current = new URL(req.getURL());
          (req as unknown as { _url: string })._url = `${target}${current.pathname}`;
        },
        onSuccess: ({ lastResponse }) => resolveDone({ body: lastResponse.getBody() as string }),
        onError: reject,
      });
      upload.start();
    });
    expect(url).toContain("/files/");
    expect(turn).toBeGreaterThanOrEqual(12);
    const media = (JSON.parse(done.body) as { media: { id: string; path: string } }).media;
    expect(media.id).toBe(await computeMediaId(mp4));
    expect((await readFile(media.path)).equals(mp4)).toBe(true);
  });
});
