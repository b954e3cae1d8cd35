// npm run example:express — the detections service, configured from the environment:
//   HOST (127.0.0.1; 0.0.0.0 in a container), PORT (3000), ANNOTATIONS_URL (unset: a dev
//   annotations server starts in-process, its database under the data directory), VIDEOS_DIR and
//   IMAGES_DIR (./data/videos, ./data/images), JWT_SECRET (HS256 verification; unset: tokens
//   are decoded only, with a warning), MAX_UPLOAD_BYTES, SERVICE_TOKEN (the service's own token
//   for work that outlives a request), ANNOTATIONS_TIMEOUT_MS (per attempt, 10000),
//   ANNOTATIONS_DEADLINE_MS (per call, 60000), RECOVERY_INTERVAL_MS (5000), DETECTOR_DELAY_MS
//   (0: simulated GPU time per detection), REQUEST_TIMEOUT_MS (0: none, uploads may take hours),
//   HEADERS_TIMEOUT_MS (60000), IDLE_TIMEOUT_MS (120000: a silent connection is closed),
//   LOG_LEVEL (info), DURABILITY (process: an answered upload survives a crash of the process;
//   power: a power cut too, every file and journal entry synced first). Logs are JSON lines
//   (pino) on standard output.
// Who may see what (docs/authorization.md): a record, its job and its reruns are its uploader's;
// SERVICE_USER_IDS (comma-separated user IDs: the service role) may read and rerun every one.
// Resumable uploads (tus) at /files: TUS_UPLOADS_DIR (<VIDEOS_DIR>/.media-intake-uploads: partial
// uploads, on the storage volume), TUS_EXPIRE_AFTER_MS (86400000: an unfinished upload expires).
// With REDIS_URL, detection runs on workers (npm run example:worker) through a BullMQ queue, and
// intakes are journaled on Redis: RESULT_WAIT_MS (30000: how long a request waits for the result
// before it answers 202 with where to poll), DETECTION_ATTEMPTS (3), REDIS_PREFIX (media-intake: the
// journal's keys), JOURNAL_HEARTBEAT_MS (10000: a host missing three beats is settled by another).
import { dirname, resolve } from "node:path";
import { pino } from "pino";
import { startRecovery } from "../../src/index.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { createDetectionsApp, type QueuedDetection } from "./app.ts";
import { redisPinger } from "./readiness.ts";
import { unwritableFolder } from "./folders.ts";
import type { RedisTusLocker } from "../../src/tus/index.ts";
import type { Detection } from "./detector.ts";
import { serve } from "./serve.ts";
import { serviceClientFrom } from "./service-client.ts";

const env = process.env;
const logger = pino({ level: env.LOG_LEVEL ?? "info", base: { service: "detections" } });
const port = Number(env.PORT ?? 3000);
const host = env.HOST ?? "127.0.0.1";
const directories = { videosDir: resolve(env.VIDEOS_DIR ?? "./data/videos"), imagesDir: resolve(env.IMAGES_DIR ?? "./data/images") };
const secret = env.JWT_SECRET;
if (!secret) logger.warn("JWT_SECRET is not set: bearer tokens are decoded, not verified. Never run like this in production.");

// What an answered upload survives: a crash of the process (the default) or a power cut too.
const durability = env.DURABILITY || "process";
if (durability !== "process" && durability !== "power") {
  process.stderr.write(`DURABILITY=${JSON.stringify(durability)}: expected "process" (an answered upload survives a crash of the process) or "power" (a power cut too).\n`);
  process.exit(1);
}

// A read-only or missing volume stops the process here, with one line naming its variable.
const tusUploadsDir = env.TUS_UPLOADS_DIR ? resolve(env.TUS_UPLOADS_DIR) : undefined;
const unwritable = await unwritableFolder([
  { variable: "VIDEOS_DIR", path: directories.videosDir },
  { variable: "IMAGES_DIR", path: directories.imagesDir },
  ...(tusUploadsDir ? [{ variable: "TUS_UPLOADS_DIR", path: tusUploadsDir }] : []),
  // The dev annotations server's database, beside VIDEOS_DIR.
  ...(env.ANNOTATIONS_URL ? [] : [{ variable: "VIDEOS_DIR", path: dirname(directories.videosDir) }]),
]);
if (unwritable) {
  process.stderr.write(`${unwritable}\n`);
  process.exit(1);
}

let annotationsUrl = env.ANNOTATIONS_URL;
let devServer: Awaited<ReturnType<typeof startDevAnnotationsServer>> | undefined;
if (!annotationsUrl) {
  const dbPath = resolve(dirname(directories.videosDir), "annotations.db");
  devServer = await startDevAnnotationsServer({ port: 0, dbPath, ...(secret ? { jwtSecret: secret } : {}) });
  annotationsUrl = devServer.url;
  logger.info({ url: annotationsUrl, dbPath }, "dev annotations server started");
}

// One client: each request passes its caller's token; the service's token is the client's own,
// for what outlives a request (records and statuses settled in the background, recovery).
const client = await serviceClientFrom(env, annotationsUrl);
// The readiness probe's client: one attempt, a short timeout (GET /readyz answers promptly).
const probeClient = await serviceClientFrom({ ...env, ANNOTATIONS_TIMEOUT_MS: "2000", ANNOTATIONS_DEADLINE_MS: "2000" }, annotationsUrl, { retry: false });
// With REDIS_URL, /readyz asks Redis for a PING on a connection of its own.
const pinger = env.REDIS_URL ? await redisPinger(env.REDIS_URL) : undefined;
// With Redis: the queue for detection, and the journal every host shares. Loaded only then, so
// that one host needs no Redis client at all.
let queue: QueuedDetection | undefined;
let tusLocker: RedisTusLocker | undefined;
if (env.REDIS_URL) {
  const [{ createDetectionQueue }, { createRedisJournal }, { createRedisTusLocker }] = await Promise.all([
    import("../../src/queue/index.ts"),
    import("../../src/journal/redis.ts"),
    import("../../src/tus/index.ts"),
  ]);
  // The PATCHes of one tus upload may reach any web process: they take turns on Redis.
  tusLocker = createRedisTusLocker({ connection: env.REDIS_URL });
  const prefix = env.REDIS_PREFIX ?? "media-intake";
  queue = {
    detections: createDetectionQueue<Detection[]>({ connection: { url: env.REDIS_URL }, attempts: Number(env.DETECTION_ATTEMPTS ?? 3) }),
    journal: createRedisJournal({ connection: env.REDIS_URL, prefix: `${prefix}:journal`, heartbeatMs: Number(env.JOURNAL_HEARTBEAT_MS ?? 10_000) }),
    resultWaitMs: Number(env.RESULT_WAIT_MS ?? 30_000),
  };
  logger.info({ redis: new URL(env.REDIS_URL).host }, "detection runs on workers through Redis");
}

// Settles what a crash or an outage left, at once and then every few seconds, while serving:
// the service starts even when the annotations service is down.
const recovery = startRecovery({
  client,
  directories,
  logger,
  ...(queue ? { journal: queue.journal } : {}),
  intervalMs: Number(env.RECOVERY_INTERVAL_MS ?? 5_000),
  onPass: (report) => {
    const settled = report.recordsCreated.length + report.markedError.length + report.statusesWritten.length + report.filesRemoved.length + report.partialsRemoved.length;
    if (settled > 0) logger.info({ ...report, failed: report.failed.map((f) => f.id) }, "recovered");
  },
});

const app = createDetectionsApp({
  client,
  directories,
  durability,
  logger,
  auth: secret ? { verify: { secret } } : {},
  serviceUserIds: (env.SERVICE_USER_IDS ?? "").split(",").map((id) => id.trim()).filter(Boolean),
  detectorDelayMs: Number(env.DETECTOR_DELAY_MS ?? 0),
  ...(queue ? { queue } : {}),
  ...(tusLocker ? { tusLocker } : {}),
  ...(tusUploadsDir ? { tusUploadsDir } : {}),
  ...(env.TUS_EXPIRE_AFTER_MS ? { tusExpireAfterMs: Number(env.TUS_EXPIRE_AFTER_MS) } : {}),
  ...(env.MAX_UPLOAD_BYTES ? { maxUploadBytes: Number(env.MAX_UPLOAD_BYTES) } : {}),
  readiness: { annotationsUrl, probeClient, ...(pinger ? { redisPing: pinger.ping } : {}) },
});
let served: Awaited<ReturnType<typeof serve>>;
try {
  served = await serve(app, {
    host,
    port,
    logger,
    requestTimeoutMs: Number(env.REQUEST_TIMEOUT_MS ?? 0),
    headersTimeoutMs: Number(env.HEADERS_TIMEOUT_MS ?? 60_000),
    idleTimeoutMs: Number(env.IDLE_TIMEOUT_MS ?? 120_000),
  });
} catch (error) {
  logger.fatal((error as Error).message);
  await recovery.stop();
  await queue?.detections.close();
  await queue?.journal.close();
  await tusLocker?.close();
  await pinger?.close();
  await devServer?.close();
  process.exit(1);
}
logger.info({ url: served.url }, `listening on ${served.url}`);
// What is not ready yet is logged now (an error naming its variable), and again when it changes.
void (app.locals.readiness as { check(): Promise<unknown> }).check();

const stop = () => {
  served.server.close();
  served.server.closeAllConnections();
  void (async () => {
    await recovery.stop();
    await queue?.detections.close();
    await queue?.journal.close();
    await tusLocker?.close();
    await pinger?.close();
    await devServer?.close();
  })();
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
