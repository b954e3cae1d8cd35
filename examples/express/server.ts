// npm run example:express — the detections service, configured from the environment:
//   HOST (127.0.0.1; 0.0.0.0 in a container), PORT (3000), ANNOTATIONS_URL (unset: a dev
//   annotations server starts in-process, its database under the data directory), VIDEOS_DIR and
//   IMAGES_DIR (./data/videos, ./data/images), JWT_SECRET (HS256 verification; unset: tokens
//   are decoded only, with a warning), MAX_UPLOAD_BYTES (none: a size, 10MB, 2GiB or plain
//   bytes), SERVICE_TOKEN (the service's own token for work that outlives a request),
//   ANNOTATIONS_TIMEOUT_MS (per attempt, 10000), ANNOTATIONS_REQUEST_DEADLINE_MS (5000: per call
//   a request waits for; a timeout keeps the upload, 503 MEDIA_RECORD_PENDING), ANNOTATIONS_DEADLINE_MS
//   (per call in the background, 60000), RECOVERY_INTERVAL_MS (5000), DETECTOR_DELAY_MS
//   (0: simulated GPU time per detection), REQUEST_TIMEOUT_MS (0: none, uploads may take hours),
//   HEADERS_TIMEOUT_MS (60000), IDLE_TIMEOUT_MS (120000: a silent connection is closed),
//   LOG_LEVEL (info), DURABILITY (process: an answered upload survives a crash of the process;
//   power: a power cut too, every file and journal entry synced first), SHUTDOWN_TIMEOUT_MS
//   (30000: on SIGTERM or SIGINT, how long the uploads under way, then the closes, may take; exit
//   1 when it cuts some, naming it). Logs are JSON lines (pino) on standard output.
// Every variable is checked at start (config.ts): a bad value stops the process with one line on
// stderr naming it, exit 1. An empty value counts as unset. VIDEOS_DIR, IMAGES_DIR and the tus
// folder must be writable folders on one file system.
// Who may see what (docs/authorization.md): a record, its job and its reruns are its uploader's;
// SERVICE_USER_IDS (comma-separated user IDs: the service role) may read and rerun every one.
// Resumable uploads (tus) at /files: TUS_UPLOADS_DIR (<VIDEOS_DIR>/.media-intake-uploads: partial
// uploads, on the storage volume), TUS_EXPIRE_AFTER_MS (86400000: an unfinished upload expires).
// With REDIS_URL (redis:// or rediss://), detection runs on workers (npm run example:worker)
// through a BullMQ queue, intakes are journaled on Redis, and possession challenges wait there:
// RESULT_WAIT_MS (30000: how long a request waits for the result before it answers 202 with
// where to poll), DETECTION_ATTEMPTS (3), REDIS_PREFIX (media-intake: the journal's and the
// challenges' keys), JOURNAL_HEARTBEAT_MS (10000: a host missing three beats is settled by another).
// Telemetry (telemetry.ts, docs/express-example.md): GET /metrics (Prometheus) unless
// OTEL_SDK_DISABLED=true; traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; OTEL_SERVICE_NAME (media-intake-example).
// First: the OpenTelemetry SDK, registered before the library loads.
import { telemetry } from "./instrumentation.ts";
import { dirname, resolve } from "node:path";
import { pino } from "pino";
import { startRecovery } from "../../src/index.ts";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { createDetectionsApp, type QueuedDetection } from "./app.ts";
import { configOrExit, readServerConfig } from "./config.ts";
import { folderOnAnotherFileSystem, type NamedFolder, unwritableFolder } from "./folders.ts";
import { redisPinger, storageFolders } from "./readiness.ts";
import type { RedisTusLocker } from "../../src/tus/index.ts";
import type { RedisChallengeStore } from "../../src/possession/redis-entry.ts";
import type { Detection } from "./detector.ts";
import { serve } from "./serve.ts";
import { serviceClientFrom } from "./service-client.ts";
import type { InFlight } from "./in-flight.ts";
import { type CloseStep, CUT_GRACE_MS, closeInTurn, stopGracefully } from "./stop.ts";

// Every variable parsed and checked before anything is opened: a bad one is one line, exit 1.
const config = configOrExit(() => readServerConfig(process.env));
const logger = pino({ level: config.logLevel, base: { service: "detections" } });
const { directories, durability, tusUploadsDir, jwtSecret: secret } = config;
telemetry.logTo(logger);
if (!secret) logger.warn("JWT_SECRET is not set: bearer tokens are decoded, not verified. Never run like this in production.");

// A read-only or missing volume, or a folder under a regular file, stops the process here, with
// one line naming its variable; so do folders on two file systems (a finished tus upload is
// linked into place, never copied). The tus folder is named by its own variable, set or not.
const tusFolder = storageFolders(directories, tusUploadsDir)[2] as NamedFolder;
const mediaFolders = storageFolders(directories).slice(0, 2);
const unfit =
  (await unwritableFolder([
    ...mediaFolders,
    tusFolder,
    // The dev annotations server's database, beside VIDEOS_DIR.
    ...(config.annotationsUrl ? [] : [{ variable: "VIDEOS_DIR", path: dirname(directories.videosDir) }]),
  ])) ?? (await folderOnAnotherFileSystem(tusFolder, mediaFolders));
if (unfit) {
  process.stderr.write(`${unfit}\n`);
  process.exit(1);
}

let annotationsUrl = config.annotationsUrl;
let devServer: Awaited<ReturnType<typeof startDevAnnotationsServer>> | undefined;
if (!annotationsUrl) {
  const dbPath = resolve(dirname(directories.videosDir), "annotations.db");
  devServer = await startDevAnnotationsServer({ port: 0, dbPath, ...(secret ? { jwtSecret: secret } : {}) });
  annotationsUrl = devServer.url;
  logger.info({ url: annotationsUrl, dbPath }, "dev annotations server started");
  // Workers (npm run example:worker) refuse to start without ANNOTATIONS_URL, and cannot reach this one.
  if (config.redisUrl) logger.warn("REDIS_URL is set and ANNOTATIONS_URL is not: the dev annotations server started in this process is reachable by no worker. Set ANNOTATIONS_URL to a service the workers reach too (the same value on every process).");
}

// The requests' client: each request passes its caller's token; the service's token is the
// client's own, for what outlives a request (records and statuses settled in the background).
// A call a request waits for ends within ANNOTATIONS_REQUEST_DEADLINE_MS: a hung service answers
// an upload with 503 MEDIA_RECORD_PENDING in seconds, the upload kept (a timeout is never taken
// for a refusal), its record created in the background by recovery, whose calls have the
// longer ANNOTATIONS_DEADLINE_MS.
const client = await serviceClientFrom({ ...config, annotationsDeadlineMs: config.annotationsRequestDeadlineMs }, annotationsUrl);
const backgroundClient = await serviceClientFrom(config, annotationsUrl);
// The readiness probe's client: one attempt, a short timeout (GET /readyz answers promptly).
const probeClient = await serviceClientFrom({ ...config, annotationsTimeoutMs: 2000, annotationsDeadlineMs: 2000 }, annotationsUrl, { retry: false });
// With REDIS_URL, /readyz asks Redis for a PING on a connection of its own.
const pinger = config.redisUrl ? await redisPinger(config.redisUrl) : undefined;
// With Redis: the queue for detection, and the journal every host shares. Loaded only then, so
// that one host needs no Redis client at all.
let queue: QueuedDetection | undefined;
let tusLocker: RedisTusLocker | undefined;
let challengeStore: RedisChallengeStore | undefined;
const redisUrl = config.redisUrl;
if (redisUrl) {
  const [{ createDetectionQueue }, { createRedisJournal }, { createRedisTusLocker }, { createRedisChallengeStore }] = await Promise.all([
    import("../../src/queue/index.ts"),
    import("../../src/journal/redis.ts"),
    import("../../src/tus/index.ts"),
    import("../../src/possession/redis-entry.ts"),
  ]);
  // The PATCHes of one tus upload may reach any web process: they take turns on Redis.
  tusLocker = createRedisTusLocker({ connection: redisUrl });
  // A possession challenge may be answered on another web process than the one that issued it.
  challengeStore = createRedisChallengeStore({ connection: redisUrl, prefix: `${config.redisPrefix}:possession` });
  queue = {
    detections: createDetectionQueue<Detection[]>({ connection: { url: redisUrl }, attempts: config.detectionAttempts, ...telemetry.queueOptions() }),
    journal: createRedisJournal({ connection: redisUrl, prefix: `${config.redisPrefix}:journal`, heartbeatMs: config.journalHeartbeatMs }),
    resultWaitMs: config.resultWaitMs,
  };
  logger.info({ redis: new URL(redisUrl).host }, "detection runs on workers through Redis");
}

// Settles what a crash or an outage left, at once and then every few seconds, while serving:
// the service starts even when the annotations service is down.
const recovery = startRecovery({
  client: backgroundClient,
  directories,
  logger,
  ...(queue ? { journal: queue.journal } : {}),
  intervalMs: config.recoveryIntervalMs,
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
  serviceUserIds: config.serviceUserIds,
  detectorDelayMs: config.detectorDelayMs,
  ...(queue ? { queue } : {}),
  ...(tusLocker ? { tusLocker } : {}),
  ...(challengeStore ? { challengeStore } : {}),
  ...(tusUploadsDir ? { tusUploadsDir } : {}),
  ...(config.tusExpireAfterMs ? { tusExpireAfterMs: config.tusExpireAfterMs } : {}),
  ...(config.maxUploadBytes ? { maxUploadBytes: config.maxUploadBytes } : {}),
  readiness: { annotationsUrl, probeClient, ...(pinger ? { redisPing: pinger.ping } : {}) },
});

// What the stop closes, in this order, each within SHUTDOWN_TIMEOUT_MS (stop.ts); telemetry last,
// to send the spans of all the others.
const closes: CloseStep[] = [
  { name: "recovery (its pass under way)", close: () => recovery.stop() },
  ...(queue
    ? [
        { name: "the detection queue on REDIS_URL", close: () => queue.detections.close() },
        { name: "the journal on REDIS_URL", close: () => queue.journal.close() },
      ]
    : []),
  ...(tusLocker ? [{ name: "the tus locker on REDIS_URL", close: () => tusLocker.close() }] : []),
  ...(challengeStore ? [{ name: "the possession challenges on REDIS_URL", close: () => challengeStore.close() }] : []),
  ...(pinger ? [{ name: "the readiness connection to REDIS_URL", close: () => pinger.close() }] : []),
  ...(devServer ? [{ name: "the dev annotations server", close: () => devServer.close() }] : []),
  { name: "telemetry (the last spans)", close: () => telemetry.shutdown() },
];
let served: Awaited<ReturnType<typeof serve>>;
try {
  served = await serve(telemetry.instrument(app), {
    host: config.host,
    port: config.port,
    logger,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
  });
} catch (error) {
  logger.fatal((error as Error).message);
  await closeInTurn(closes, performance.now() + CUT_GRACE_MS, logger, "the start's cleanup");
  process.exit(1);
}

// SIGTERM or SIGINT: no new connections; the uploads under way finish within SHUTDOWN_TIMEOUT_MS,
// then the rest closes within it and the process exits (1, naming it, when it cut some). Uploads
// it cuts are answered 503 when their answer has not started, and their temp files removed.
stopGracefully(served.server, {
  logger,
  timeoutMs: config.shutdownTimeoutMs,
  closes,
  abortRequests: (withinMs) => (app.locals.inFlight as InFlight).cut(withinMs),
});
logger.info({ url: served.url }, `listening on ${served.url}`);
// What is not ready yet is logged now (an error naming its variable), and again when it changes.
void (app.locals.readiness as { check(): Promise<unknown> }).check();
