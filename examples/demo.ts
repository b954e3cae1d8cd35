// npm run demo — the whole mission on a fresh clone: a dev annotations server and the Express
// detections service on free ports, four uploads with a signed token, a resumable (tus) upload
// whose connection is cut mid-way and resumed, and what became of each.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { SignJWT } from "jose";
import { Upload } from "tus-js-client";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, mediaStatusName } from "../src/index.ts";
import { createDetectionsApp } from "./express/app.ts";
import { sampleMp4, samplePng } from "./sample-media.ts";

const root = await mkdtemp(join(tmpdir(), "media-intake-demo-"));
const secret = randomBytes(32).toString("hex");
const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), jwtSecret: secret });
const directories = { videosDir: join(root, "data", "videos"), imagesDir: join(root, "data", "images") };
const app = createDetectionsApp({ client: createAnnotationsClient({ baseUrl: annotations.url }), directories, auth: { verify: { secret } } });
// The link of the resumable upload drops once, mid-way through its second chunk.
let cutAtOffset: number | undefined;
let patches = 0;
const server = createServer((req, res) => {
  if (req.method === "PATCH" && ++patches === 2) {
    const emit = req.emit.bind(req) as (event: string, ...args: unknown[]) => boolean;
    let seen = 0;
    req.emit = ((event: string, ...args: unknown[]) => {
      if (event === "data" && cutAtOffset === undefined && (seen += (args[0] as Buffer).length) > 512 * 1024) {
        cutAtOffset = Number(req.headers["upload-offset"]) + seen;
        req.socket.destroy();
      }
      return emit(event, ...args);
    }) as typeof req.emit;
  }
  app(req, res);
});
server.listen(0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
const serviceUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

try {
  const token = await new SignJWT({ sub: "demo-user" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("10m").sign(new TextEncoder().encode(secret));
  console.log(`dev annotations server ${annotations.url}, detections service ${serviceUrl}, data in ${root}\n`);
  const photo = samplePng(64, 48, 1);
  const uploads: Array<[string, Uint8Array]> = [
    ["street.png", photo],
    ["clip.mp4", sampleMp4(2 << 20, 3)],
    ["broken.png", samplePng(64, 48, 7).subarray(0, 300)],
    ["street-copy.PNG", photo],
  ];
  const rows: string[][] = [["file", "HTTP", "media ID", "type", "stored at", "status history"]];
  for (const [name, bytes] of uploads) {
    const form = new FormData();
    form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
    const response = await fetch(`${serviceUrl}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { media?: { id: string; mediaType: number; path: string }; detections?: unknown[]; error?: { code: string } };
    const id = body.media?.id ?? (await computeMediaId(bytes));
    const record = await createAnnotationsClient({ baseUrl: annotations.url, token }).media.get(id).catch(() => undefined);
    const history = (await (await fetch(`${annotations.url}/api/media/${id}/history`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{ mediaStatus: number }>;
    rows.push([
      name,
      `${response.status} ${body.error ? body.error.code : `${body.detections?.length ?? 0} detection${body.detections?.length === 1 ? "" : "s"}`}`,
      id,
      record ? (record.mediaType === 1 ? "Video" : "Image") : "-",
      record ? relative(root, record.path) : "-",
      Array.isArray(history) ? history.map((h) => mediaStatusName(h.mediaStatus)).join(" -> ") : "-",
    ]);
  }
  // The resumable upload: tus-js-client, 1 MiB chunks, the connection cut and the upload resumed.
  const video = sampleMp4(3 << 20, 5);
  let resumedFrom = 0;
  const finished = await new Promise<{ media: { id: string; path: string; mediaType: number } }>((resolve, reject) => {
    const upload = new Upload(video, {
      endpoint: `${serviceUrl}/files`,
      chunkSize: 1 << 20,
      retryDelays: [0, 200, 1000],
      metadata: { filename: "field-video.mp4" },
      headers: { authorization: `Bearer ${token}` },
      onBeforeRequest: (req) => {
        if (cutAtOffset !== undefined && !resumedFrom && req.getMethod() === "PATCH") resumedFrom = Number(req.getHeader("Upload-Offset"));
      },
      onSuccess: ({ lastResponse }) => resolve(JSON.parse(lastResponse.getBody() as string)),
      onError: reject,
    });
    upload.start();
  });
  // Detection runs after the upload's final answer: wait for its end.
  const client = createAnnotationsClient({ baseUrl: annotations.url, token });
  for (let record = await client.media.get(finished.media.id); record.mediaStatus <= 2; record = await client.media.get(finished.media.id)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const history = (await (await fetch(`${annotations.url}/api/media/${finished.media.id}/history`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{ mediaStatus: number }>;
  rows.push([
    "field-video.mp4",
    `tus, cut at ${((cutAtOffset ?? 0) / 2 ** 20).toFixed(1)} MiB, resumed from ${(resumedFrom / 2 ** 20).toFixed(1)} MiB`,
    finished.media.id,
    finished.media.mediaType === 1 ? "Video" : "Image",
    relative(root, finished.media.path),
    history.map((h) => mediaStatusName(h.mediaStatus)).join(" -> "),
  ]);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
  console.log("\nThe copy got the same ID and record (detection ran again); the truncated PNG ended in Error;");
  console.log("the resumable upload went on from the bytes the server had, and ended like any upload.");
} finally {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await annotations.close();
  await rm(root, { recursive: true, force: true });
}
