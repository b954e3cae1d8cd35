// One server of `npm run bench:e2e`, in a process of its own: `node bench/e2e-server.ts <variant>
// <config JSON>`; prints `LISTENING <url>`, serves POST /upload (multipart, field `file`) until
// SIGTERM. The variants are what users run today and media-intake's routes:
//   multer              multer diskStorage, nothing else (the plain way)
//   busboy              busboy piped to fs.createWriteStream
//   multer-fetch        multer diskStorage, then by hand what /detect does without journal or
//                       checks: the JWT verified, the media ID, the file renamed to its path, the
//                       record created, AIProcessing written, the stand-in detector run (it
//                       reads the file), AIProcessed written and the record read back (the
//                       answer), with raw fetch: the annotations calls /detect makes
//   multer-fetch-power  the same, the file fsynced before its rename and its folder after (what
//                       a hand-written flow does to survive a power cut)
//   store               busboy into media-intake's storeMedia (with the request's AbortSignal)
//   detect              the Express example's POST /detect (intake, journal, record,
//                       lifecycle) with the stand-in detector, durability "process"
//   detect-power        the same with durability "power"
//   detect-metrics      /detect with the example's telemetry on (examples/express/telemetry.ts,
//                       as server.ts starts it without an OTLP endpoint): the request's
//                       http.server.request.duration and the library's metrics recorded
//   detect-metrics-off  the same app through the same start with OTEL_SDK_DISABLED=true
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Express } from "express";

const variant = process.argv[2];
const config = JSON.parse(process.argv[3] ?? "{}") as { dir: string; annotationsUrl: string; secret: string };
const videosDir = join(config.dir, "videos");
const imagesDir = join(config.dir, "images");
mkdirSync(videosDir, { recursive: true });
mkdirSync(imagesDir, { recursive: true });
const directories = { videosDir, imagesDir };
const typeDir = (name: string) => (/\.(mp4|mov|mkv|webm|avi)$/i.test(name) ? videosDir : imagesDir);
const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
};

let handler: (req: IncomingMessage, res: ServerResponse) => void;

/** fsync of a file or folder by path. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

if (variant === "multer" || variant === "multer-fetch" || variant === "multer-fetch-power") {
  const { default: express } = await import("express");
  const { default: multer } = await import("multer");
  const { jwtVerify } = await import("jose");
  const { computeMediaIdSync, initMediaIdHasher, MediaStatus, MediaType } = await import("../src/index.ts");
  const { detect } = await import("../examples/express/detector.ts");
  await initMediaIdHasher();
  const app = express();
  const upload = multer({
    storage: multer.diskStorage({ destination: (_req, file, done) => done(null, typeDir(file.originalname)), filename: (_req, _file, done) => done(null, randomBytes(8).toString("hex")) }),
  });
  const key = new TextEncoder().encode(config.secret);
  const headers = { "content-type": "application/json", accept: "application/json" };
  app.post("/upload", upload.single("file"), async (req, res, next) => {
    try {
      const file = req.file as Express.Multer.File;
      if (variant === "multer") return void res.json({ size: file.size });
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const { payload } = await jwtVerify(token, key);
      const id = computeMediaIdSync(file.path);
      const path = join(file.destination, `${id}${extname(file.originalname).toLowerCase()}`);
      if (variant === "multer-fetch-power") await syncPath(file.path);
      await rename(file.path, path);
      if (variant === "multer-fetch-power") await syncPath(file.destination);
      const auth = { ...headers, authorization: `Bearer ${token}` };
      const mediaType = file.destination === videosDir ? MediaType.Video : MediaType.Image;
      const record = { Id: id, Name: file.originalname, Path: path, MediaType: mediaType, MediaStatus: MediaStatus.New, UserId: String(payload.sub) };
      const created = await fetch(`${config.annotationsUrl}/api/media`, { method: "POST", headers: auth, body: JSON.stringify(record) });
      if (created.status !== 201) throw new Error(`create: ${created.status}`);
      await created.text();
      const setStatus = async (status: number) => {
        const put = await fetch(`${config.annotationsUrl}/api/media/${id}/status`, { method: "PUT", headers: auth, body: JSON.stringify({ MediaStatus: status }) });
        if (put.status !== 204) throw new Error(`status: ${put.status}`);
        await put.text();
      };
      await setStatus(MediaStatus.AIProcessing);
      const detections = await detect(path, id);
      await setStatus(MediaStatus.AIProcessed);
      // The answer carries the record as the service has it, as /detect's does.
      const read = await fetch(`${config.annotationsUrl}/api/media/${id}`, { headers: auth });
      if (read.status !== 200) throw new Error(`get: ${read.status}`);
      res.json({ media: await read.json(), detections });
    } catch (error) {
      next(error);
    }
  });
  handler = app;
} else if (variant === "busboy" || variant === "store") {
  const { default: busboy } = await import("busboy");
  const { storeMedia } = await import("../src/index.ts");
  handler = (req, res) => {
    if (req.method !== "POST" || req.url !== "/upload") return json(res, 404, {});
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort(new Error("the client disconnected"));
    });
    const form = busboy({ headers: req.headers });
    form.on("file", (_field, file, info: { filename?: string }) => {
      const filename = info.filename ?? "upload";
      const done =
        variant === "busboy"
          ? pipeline(file, createWriteStream(join(typeDir(filename), randomBytes(8).toString("hex")))).then(() => ({}))
          : storeMedia(file, { originalName: filename, directories, signal: controller.signal });
      done.then(
        (stored) => json(res, 200, stored),
        (error: unknown) => json(res, 500, { error: String(error) }),
      );
    });
    req.pipe(form);
  };
} else if (variant === "detect" || variant === "detect-power" || variant === "detect-metrics" || variant === "detect-metrics-off") {
  // The telemetry first, before the library loads (as examples/express/instrumentation.ts does).
  let instrument = (app: Express) => app;
  if (variant === "detect-metrics" || variant === "detect-metrics-off") {
    const [{ readTelemetryConfig }, { startTelemetry }] = await Promise.all([import("../examples/express/config.ts"), import("../examples/express/telemetry.ts")]);
    const telemetryConfig = readTelemetryConfig({ OTEL_SDK_DISABLED: variant === "detect-metrics-off" ? "true" : "false" });
    const telemetry = startTelemetry(telemetryConfig, { serviceName: "bench-e2e", metrics: true });
    instrument = (app) => telemetry.instrument(app);
  }
  const { createDetectionsApp } = await import("../examples/express/app.ts");
  const { createAnnotationsClient } = await import("../src/index.ts");
  const app = createDetectionsApp({
    client: createAnnotationsClient({ baseUrl: config.annotationsUrl, token: "service-token" }),
    directories,
    auth: { verify: { secret: config.secret } },
    durability: variant === "detect-power" ? "power" : "process",
  });
  const served = instrument(app);
  handler = (req, res) => {
    if (req.url === "/upload") req.url = "/detect";
    served(req, res);
  };
} else {
  throw new Error(`Unknown variant ${variant}: multer, busboy, multer-fetch, multer-fetch-power, store, detect, detect-power, detect-metrics or detect-metrics-off.`);
}

const server = createServer(handler);
server.listen(0, "127.0.0.1", () => process.stdout.write(`LISTENING http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));
process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
