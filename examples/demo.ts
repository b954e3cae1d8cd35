// npm run demo — the whole mission on a fresh clone: a dev annotations server and the Express
// detections service on free ports, four uploads with a signed token, and what became of each.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { SignJWT } from "jose";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { computeMediaId, createAnnotationsClient, mediaStatusName } from "../src/index.ts";
import { createDetectionsApp } from "./express/app.ts";
import { sampleMp4, samplePng } from "./sample-media.ts";

const root = await mkdtemp(join(tmpdir(), "media-intake-demo-"));
const secret = randomBytes(32).toString("hex");
const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), jwtSecret: secret });
const directories = { videosDir: join(root, "data", "videos"), imagesDir: join(root, "data", "images") };
const app = createDetectionsApp({ client: createAnnotationsClient({ baseUrl: annotations.url }), directories, auth: { verify: { secret } } });
const server = app.listen(0, "127.0.0.1");
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
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
  console.log("\nThe copy got the same ID and record (detection ran again); the truncated PNG ended in Error.");
} finally {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await annotations.close();
  await rm(root, { recursive: true, force: true });
}
