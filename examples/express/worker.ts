// npm run example:worker — detection workers for the example's Redis mode. They take the jobs
// the web processes enqueue (npm run example:express with REDIS_URL), run the stand-in detector
// under the status lifecycle, and write each record's statuses. Configured from the environment:
//   REDIS_URL (required), ANNOTATIONS_URL (required: the service the web processes use),
//   SERVICE_TOKEN (the workers' own token; or minted from JWT_SECRET, or unsigned for a dev
//   server), WORKER_CONCURRENCY (1: jobs at once in this process), DETECTOR_DELAY_MS (0: simulated
//   GPU time per detection), WORKER_LOCK_MS (30000: a dead worker's job runs again elsewhere after
//   it), STALLED_INTERVAL_MS (30000), REDIS_PREFIX (media-intake), JOURNAL_HEARTBEAT_MS (10000),
//   LOG_LEVEL (info), SHUTDOWN_TIMEOUT_MS (30000: how long a stop may take). With
//   OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), traces over OTLP/HTTP as
//   the web process sends them (telemetry.ts), OTEL_SERVICE_NAME (media-intake-example-worker);
//   no metrics (a worker serves no /metrics).
// SIGTERM or SIGINT: no new jobs, the running ones finish, then the process exits 0; all of it
// within SHUTDOWN_TIMEOUT_MS, whatever Redis does (a Redis down or hung is left behind: exit 1,
// naming the variable). A second signal exits at once (1). Jobs left running run again on another
// worker once their lock lapses (WORKER_LOCK_MS).
import { setTimeout } from "node:timers/promises";
import { UnrecoverableError } from "bullmq";
import { pino } from "pino";
import { createRedisJournal } from "../../src/journal/redis.ts";
import { startDetectionWorker } from "../../src/queue/index.ts";
import { configOrExit, readWorkerConfig } from "./config.ts";
import { CorruptMediaError, detect } from "./detector.ts";
import { serviceClientFrom } from "./service-client.ts";
import { closeInTurn } from "./stop.ts";
import { startTelemetry } from "./telemetry.ts";

// Every variable parsed and checked before anything is opened: a bad one is one line, exit 1.
const config = configOrExit(() => readWorkerConfig(process.env));
const logger = pino({ level: config.logLevel, base: { service: "detections-worker" } });
// Traces only: the library's spans start on the tracer provider registered when they start.
const telemetry = startTelemetry(config.telemetry, { serviceName: "media-intake-example-worker", metrics: false });
telemetry.logTo(logger);
const { redisUrl } = config;
const client = await serviceClientFrom(config, config.annotationsUrl);
const journal = createRedisJournal({ connection: redisUrl, prefix: `${config.redisPrefix}:journal`, heartbeatMs: config.journalHeartbeatMs });
const delayMs = config.detectorDelayMs;

const worker = startDetectionWorker(
  async (media, { signal, attempt }) => {
    logger.info({ id: media.id, attempt }, "detecting");
    if (delayMs > 0) await setTimeout(delayMs, undefined, { signal });
    try {
      return await detect(media.path ?? "", media.id, signal);
    } catch (error) {
      // A corrupt file stays corrupt: no further try.
      if (error instanceof CorruptMediaError) throw new UnrecoverableError(error.message);
      throw error;
    }
  },
  {
    connection: { url: redisUrl },
    client,
    journal,
    logger,
    concurrency: config.concurrency,
    lockDurationMs: config.lockMs,
    stalledIntervalMs: config.stalledIntervalMs,
    ...telemetry.queueOptions(),
  },
);

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    logger.error({ signal }, `stopping at once on a second ${signal}: running jobs run again on another worker once their lock lapses (WORKER_LOCK_MS=${config.lockMs})`);
    process.exit(1);
  }
  stopping = true;
  const limit = `SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs} ms)`;
  logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, `stopping: running jobs finish first (SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs})`);
  const by = performance.now() + config.shutdownTimeoutMs;
  void (async () => {
    // In turn, each within what is left of the limit; telemetry last, to send the spans of the rest.
    const closed = await closeInTurn(
      [
        { name: "the worker (its running jobs, and Redis at REDIS_URL)", close: () => worker.close() },
        { name: "the journal on REDIS_URL", close: () => journal.close() },
        { name: "telemetry (the last spans)", close: () => telemetry.shutdown() },
      ],
      by,
      logger,
      limit,
      `Raise SHUTDOWN_TIMEOUT_MS to let running jobs finish; a Redis that does not answer (REDIS_URL) is not waited for.`,
    );
    logger.info({ code: closed ? 0 : 1 }, "worker stopped");
    process.exit(closed ? 0 : 1);
  })();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Logged once a signal would be handled.
logger.info({ concurrency: config.concurrency }, "worker ready");
