// uploadResumable while the annotations service is down at the finish: the bytes are all in and
// kept, the record pending in the journal, and the final PATCH answers 503 MEDIA_RECORD_PENDING.
// tus-js-client alone would then take the HEAD's 503 for a lost upload and send the whole file
// again to a new one; the helper waits instead (HEADs, honouring Retry-After) and resolves once
// the service is back. Against the library's tus endpoint and the dev annotations server, stopped
// and started again on its port and database, over real HTTP on loopback.
import { join } from "node:path";
import { Upload } from "tus-js-client";
import { describe, expect, it, vi } from "vitest";
import { sampleMp4 } from "../examples/sample-media.ts";
import { computeMediaId, type TusUploadClass, uploadResumable } from "../src/browser/index.ts";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createAnnotationsClient, MediaStatus } from "../src/index.ts";
import { MiB, memoryUrlStorage, secret, useBrowserService } from "./helpers/browser-service.ts";

const service = useBrowserService();

describe("uploadResumable, the annotations service down at the finish", () => {
  it("sends the bytes once, waits on the upload's URL while the service is down, and resolves once it is back: one upload, one file, one record, one detection started", async () => {
    const { dev } = service;
    const started: string[] = [];
    // No retries in the service's client: the finish fails at once while the service is down.
    await service.restartTus({
      client: createAnnotationsClient({ baseUrl: dev.annotations.url, token: dev.serviceToken, retry: false }),
      onMediaIntaken: (media) => {
        started.push(media.id);
        return { detection: { jobId: media.id, state: "waiting", poll: `/detections/${media.id}` } };
      },
    });
    // What reaches the tus endpoint: the bytes of every PATCH body, and each answer's status.
    let received = 0;
    const answers: string[] = [];
    service.fault = (req, res) => {
      // Watches the body as the server reads it (a listener of our own would drain it).
      const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
      req.emit = ((event: string, ...args: unknown[]) => {
        if (event === "data" && req.method === "PATCH") received += (args[0] as Buffer).length;
        return emit(event, ...args);
      }) as typeof req.emit;
      res.on("finish", () => answers.push(`${req.method} ${res.statusCode}`));
      return false;
    };
    const { port } = dev.annotations;
    await dev.annotations.close();

    const bytes = sampleMp4(3 * MiB, 41);
    const id = await computeMediaId(new Blob([bytes as Uint8Array<ArrayBuffer>]));
    const storage = memoryUrlStorage();
    const upload = uploadResumable(new File([bytes as Uint8Array<ArrayBuffer>], "field.mp4", { lastModified: Date.parse("2025-03-01T10:00:00Z") }), {
      endpoint: service.endpoint,
      token: dev.token,
      Upload: Upload as TusUploadClass,
      chunkSize: MiB,
      retryDelays: [0, 200, 400],
      urlStorage: storage,
    });
    let settled = false;
    void upload.done.finally(() => (settled = true)).catch(() => {});
    // The last PATCH is answered 503 (the record pending), and then a HEAD is too: still down.
    await vi.waitFor(() => expect(answers).toContain("PATCH 503"), { timeout: 20_000, interval: 20 });
    await vi.waitFor(() => expect(answers.slice(answers.indexOf("PATCH 503"))).toContain("HEAD 503"), { timeout: 20_000, interval: 20 });
    expect(settled).toBe(false);

    dev.annotations = await startDevAnnotationsServer({ dbPath: join(dev.root, "annotations.db"), jwtSecret: secret, port });
    const { status, body } = await upload.done;

    // Sent once: one creation, the file's bytes once, no new upload.
    expect(service.tusSeen.filter((request) => request.method === "POST")).toHaveLength(1);
    expect(received).toBe(bytes.length);
    // Finished by a HEAD: no body, so the media's ID and where its detection is polled.
    expect(status).toBe(200);
    expect(body).toEqual({ media: { id }, detection: { jobId: id, poll: `/detections/${id}` } });
    expect(await service.stored()).toEqual([`videos/${id}.mp4`]);
    expect(await service.partials()).toEqual([]);
    expect(storage.entries.size).toBe(0);
    const record = await createAnnotationsClient({ baseUrl: dev.annotations.url, token: dev.serviceToken }).media.get(id);
    expect(record).toMatchObject({ id, userId: "alice", mediaStatus: MediaStatus.New });
    expect(started).toEqual([id]);
  }, 60_000);
});
