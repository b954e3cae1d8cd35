// Uploads as the job meets them, through `npm run example:express` configured as users run it:
// one that takes six minutes at 128 KB/s (longer than Node's default 5-minute request limit),
// and one of 2 GiB. `npm run test:long`; CI runs it after `npm test`.
import { request } from "node:http";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { sampleMp4 } from "../../examples/sample-media.ts";
import { startChild } from "../helpers/child.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

const secret = "long-uploads-secret-0123456789abcdef";

async function startExample() {
  const root = await makeTempDir();
  const directories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
  const example = startChild(resolve(import.meta.dirname, "../../examples/express/server.ts"), null, {
    PORT: "0",
    VIDEOS_DIR: directories.videosDir,
    IMAGES_DIR: directories.imagesDir,
    JWT_SECRET: secret,
  });
  const url = (await example.match(/"msg":"listening on (http:\/\/[^"]+)"/))[1] as string;
  const token = await new SignJWT({ sub: "field-team" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode(secret));
  return { url, token, example };
}

/** A well-formed MP4 of `mediaBytes` payload, as chunks: the header, then the payload 1 MiB at a time. */
function* mp4(mediaBytes: number, seed: number): Generator<Buffer> {
  const header = sampleMp4(0, seed);
  const mdat = Buffer.alloc(8);
  mdat.writeUInt32BE(8 + mediaBytes, 0);
  mdat.write("mdat", 4, "latin1");
  yield Buffer.concat([header.subarray(0, header.length - 8), mdat]);
  const block = Buffer.alloc(1 << 20);
  for (let sent = 0, n = 0; sent < mediaBytes; n++) {
    const length = Math.min(block.length, mediaBytes - sent);
    block.fill((n * 7 + seed) & 255, 0, length);
    block.writeUInt32BE(n, 0);
    yield block.subarray(0, length);
    sent += length;
  }
}

/** POSTs a multipart form whose file part is `chunks`, pacing each write by `pace`; resolves to the answer. */
async function upload(url: string, token: string, name: string, size: number, chunks: Iterable<Buffer>, pace?: () => Promise<void>) {
  const boundary = "----long-upload";
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: video/mp4\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const { hostname, port } = new URL(url);
  return new Promise<{ status: number; body: Record<string, any> }>((resolveAnswer, reject) => {
    const req = request(
      { hostname, port, path: "/detect", method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": head.length + size + tail.length } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolveAnswer({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, any> }));
      },
    );
    req.on("error", reject);
    void (async () => {
      req.write(head);
      for (const chunk of chunks) {
        if (!req.write(chunk)) await new Promise((drained) => req.once("drain", drained));
        await pace?.();
      }
      req.end(tail);
    })().catch(reject);
  });
}

describe("long uploads through the example", () => {
  it("a 6-minute upload at 128 KB/s arrives whole", async () => {
    const { url, token } = await startExample();
    const mediaBytes = 46 * 1000 * 1000 - 1024;
    const size = [...mp4(0, 1)][0]!.length + mediaBytes;
    // 128 KiB a second, split into 1 MiB blocks: each block paced by 8 s.
    const started = performance.now();
    const answer = await upload(url, token, "drone.mp4", size, mp4(mediaBytes, 1), () => sleep(((1 << 20) / (128 * 1024)) * 1000));
    const seconds = (performance.now() - started) / 1000;
    expect(answer.status).toBe(200);
    expect(answer.body.media).toMatchObject({ size, mediaStatus: 3, userId: "field-team" });
    expect((await stat(answer.body.media.path as string)).size).toBe(size);
    expect(seconds).toBeGreaterThan(330);
  }, 15 * 60_000);

  it("a 2 GiB upload arrives whole", async () => {
    const { url, token } = await startExample();
    const mediaBytes = 2 * 2 ** 30;
    const size = [...mp4(0, 2)][0]!.length + mediaBytes;
    const answer = await upload(url, token, "cctv.mp4", size, mp4(mediaBytes, 2));
    expect(answer.status).toBe(200);
    expect(answer.body.media).toMatchObject({ size, mediaStatus: 3 });
    expect((await stat(answer.body.media.path as string)).size).toBe(size);
  }, 15 * 60_000);
});
