// The example's settings in one place: every environment variable server.ts and worker.ts read is
// parsed and checked here, at start, before anything is opened. A bad value stops the process
// with one line on stderr that names the variable, the value and the form expected, and exit
// code 1 (no stack). An empty value counts as unset: compose files pass empty strings.
import { resolve } from "node:path";

/** A setting that cannot be used; its message is the one line the operator sees. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Units of a size, lower-cased: decimal (KB, MB, …) and binary (KiB, MiB, …). */
const sizeUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Reads one environment at a time; each reader throws a {@link ConfigError} naming its variable. */
class Reader {
  private readonly env: NodeJS.ProcessEnv;
  constructor(env: NodeJS.ProcessEnv) {
    this.env = env;
  }

  /** The value, or `undefined` when unset or empty. */
  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value;
  }

  private fail(name: string, value: string, expected: string): never {
    throw new ConfigError(`${name}=${JSON.stringify(withoutPassword(value))}: expected ${expected}.`);
  }

  string(name: string): string | undefined {
    return this.raw(name);
  }

  required(name: string, what: string): string {
    const value = this.raw(name);
    if (value === undefined) throw new ConfigError(`${name} is not set: ${what}.`);
    return value;
  }

  /** Whole milliseconds, at least `min`. */
  ms(name: string, fallback: number, min = 0): number {
    return this.integer(name, fallback, min, Number.MAX_SAFE_INTEGER, `a whole number of milliseconds, ${min} or more`);
  }

  integer(name: string, fallback: number, min: number, max: number, expected = `a whole number from ${min} to ${max}`): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) this.fail(name, value, expected);
    return n;
  }

  /** A size: plain bytes, or a number with a unit (10MB, 2GiB, 1.5 GB), case-insensitive. */
  size(name: string): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
    const unit = match ? sizeUnits[(match[2] || "b").toLowerCase()] : undefined;
    const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : Number.NaN;
    if (!Number.isSafeInteger(bytes) || bytes < 1) this.fail(name, value, "a size such as 10MB, 2GiB or plain bytes (1 or more)");
    return bytes;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T, expected?: string): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const choice = choices.find((c) => c === value.trim().toLowerCase());
    if (!choice) this.fail(name, value, expected ?? `one of ${choices.join(", ")}`);
    return choice;
  }

  /**
   * An absolute URL whose scheme is one of `protocols` (e.g. `["http:", "https:"]`). With
   * `noCredentials`, a user name or password in it is refused (and never echoed): the service
   * is called with a token, and a URL is printed in logs and by `/readyz`.
   */
  url(name: string, protocols: readonly string[], expected: string, noCredentials = false): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    let url: URL | undefined;
    try {
      url = new URL(value.trim());
    } catch {
      url = undefined;
    }
    // `localhost:6379` parses as the scheme "localhost:": refused by the scheme check.
    if (!url || !protocols.includes(url.protocol) || !url.hostname) {
      const hostAndPort = /^[\w.-]+:\d+$/.test(value.trim());
      this.fail(name, value, hostAndPort ? `${expected}; with its scheme: ${protocols[0]}//${value.trim()}` : expected);
    }
    if (noCredentials && (url.username || url.password)) {
      throw new ConfigError(
        `${name}=${JSON.stringify(withoutPassword(value.trim()))}: a user name or password in the URL is not used (the service is called with the token of SERVICE_TOKEN or JWT_SECRET) and would be printed in logs and by /readyz; remove it.`,
      );
    }
    return value.trim();
  }

  /**
   * An HS256 secret (JWT_SECRET): at least 32 bytes, the 256 bits RFC 7518 section 3.2 requires
   * of an HS256 key (a shorter one is guessed offline from any token). Never echoed.
   */
  secret(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `${name} is ${bytes} byte${bytes === 1 ? "" : "s"} long: an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes (256 bits, RFC 7518 section 3.2); make one with: openssl rand -base64 32`,
      );
    }
    return value;
  }

  folder(name: string, fallback: string): string {
    return resolve(this.raw(name) ?? fallback);
  }
}

/** The shortest HS256 secret taken (RFC 7518 section 3.2: a key of 256 bits or more). */
export const MIN_SECRET_BYTES = 32;

/** `value` with the password of a URL in it masked (`redis://:***@host`), for a message that echoes it. */
export function withoutPassword(value: string): string {
  return value.replace(/^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?[^/@:]*):[^/@]*@/i, "$1:***@");
}

/** `text` with the password of every URL in it masked: an error's message may quote the URL it called. */
export function withoutPasswords(text: string): string {
  return text.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/g, "$1:***@");
}

const redisExpected = "a redis:// or rediss:// URL such as redis://127.0.0.1:6379";
const httpExpected = "an http:// or https:// URL such as http://127.0.0.1:4000";
const otlpExpected = "an http:// or https:// URL such as http://127.0.0.1:4318 (an OpenTelemetry collector's OTLP/HTTP port)";

/**
 * OpenTelemetry's standard variables (telemetry.ts): OTEL_SDK_DISABLED (false: metrics on
 * /metrics; true: no telemetry at all), OTEL_SERVICE_NAME, where traces go over OTLP/HTTP:
 * OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/traces` appended) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as
 * it is), neither set: no traces; and OTEL_BSP_SCHEDULE_DELAY (5000: ms between two batches of
 * spans). The exporter reads its variables itself (and OTEL_EXPORTER_OTLP_HEADERS, …): they are
 * checked here so that a typo stops the start instead of losing every trace.
 */
function telemetry(read: Reader) {
  const disabled = read.oneOf("OTEL_SDK_DISABLED", ["true", "false"] as const, "false", "true or false") === "true";
  const endpoint = read.url("OTEL_EXPORTER_OTLP_ENDPOINT", ["http:", "https:"], otlpExpected);
  const tracesEndpoint = read.url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ["http:", "https:"], otlpExpected);
  // The example sends OTLP over HTTP (JSON, which collectors take on the same port as protobuf).
  const protocols = ["http/json", "http/protobuf"] as const;
  const protocolExpected = "http/json or http/protobuf: traces go over OTLP/HTTP, not gRPC (the collector's port 4318, not 4317)";
  read.oneOf("OTEL_EXPORTER_OTLP_PROTOCOL", protocols, "http/json", protocolExpected);
  read.oneOf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocols, "http/json", protocolExpected);
  const warnings: string[] = [];
  // The specification appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT: one already there is doubled.
  if (!disabled && endpoint && !tracesEndpoint && /\/v1\/traces\/*$/.test(new URL(endpoint).pathname)) {
    warnings.push(
      `OTEL_EXPORTER_OTLP_ENDPOINT (${withoutPassword(endpoint)}) ends in /v1/traces, which is appended to it: spans go to ${withoutPassword(endpoint.replace(/\/+$/, ""))}/v1/traces. Give the collector's base URL there, or the full URL in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.`,
    );
  }
  return {
    disabled,
    /** What is taken but most likely wrong: logged at warn at start. */
    warnings,
    serviceName: read.string("OTEL_SERVICE_NAME")?.trim(),
    scheduleDelayMs: read.ms("OTEL_BSP_SCHEDULE_DELAY", 5_000, 1),
    /** The variable that set where spans are posted, for a log line. */
    tracesVariable: tracesEndpoint ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT",
    /** Where spans are posted; `undefined`: no traces. */
    tracesUrl: disabled ? undefined : (tracesEndpoint ?? (endpoint ? `${endpoint.replace(/\/+$/, "")}/v1/traces` : undefined)),
  };
}

export type TelemetryConfig = ReturnType<typeof telemetry>;

/** The telemetry settings alone: what telemetry.ts needs before anything else is loaded. */
export function readTelemetryConfig(env: NodeJS.ProcessEnv): TelemetryConfig {
  return telemetry(new Reader(env));
}

/** What both processes share: logging, the annotations client, the detector, Redis. */
function common(read: Reader) {
  return {
    logLevel: read.oneOf("LOG_LEVEL", logLevels, "info"),
    jwtSecret: read.secret("JWT_SECRET"),
    serviceToken: read.string("SERVICE_TOKEN"),
    annotationsTimeoutMs: read.ms("ANNOTATIONS_TIMEOUT_MS", 10_000, 1),
    annotationsDeadlineMs: read.ms("ANNOTATIONS_DEADLINE_MS", 60_000, 1),
    detectorDelayMs: read.ms("DETECTOR_DELAY_MS", 0),
    redisPrefix: read.string("REDIS_PREFIX")?.trim() ?? "media-intake",
    journalHeartbeatMs: read.ms("JOURNAL_HEARTBEAT_MS", 10_000, 1),
    shutdownTimeoutMs: read.ms("SHUTDOWN_TIMEOUT_MS", 30_000),
    telemetry: telemetry(read),
  };
}

export type ServerConfig = ReturnType<typeof readServerConfig>;

/** The web process's settings (server.ts); throws a {@link ConfigError} on the first bad one. */
export function readServerConfig(env: NodeJS.ProcessEnv) {
  const read = new Reader(env);
  const videosDir = read.folder("VIDEOS_DIR", "./data/videos");
  const tusUploadsDir = read.raw("TUS_UPLOADS_DIR");
  return {
    ...common(read),
    host: read.string("HOST")?.trim() ?? "127.0.0.1",
    port: read.integer("PORT", 3000, 0, 65535, "a port number from 0 to 65535"),
    annotationsUrl: read.url("ANNOTATIONS_URL", ["http:", "https:"], httpExpected, true),
    annotationsRequestDeadlineMs: read.ms("ANNOTATIONS_REQUEST_DEADLINE_MS", 5_000, 1),
    directories: { videosDir, imagesDir: read.folder("IMAGES_DIR", "./data/images") },
    tusUploadsDir: tusUploadsDir === undefined ? undefined : resolve(tusUploadsDir),
    maxUploadBytes: read.size("MAX_UPLOAD_BYTES"),
    recoveryIntervalMs: read.ms("RECOVERY_INTERVAL_MS", 5_000, 1),
    requestTimeoutMs: read.ms("REQUEST_TIMEOUT_MS", 0),
    headersTimeoutMs: read.ms("HEADERS_TIMEOUT_MS", 60_000),
    idleTimeoutMs: read.ms("IDLE_TIMEOUT_MS", 120_000),
    durability: read.oneOf(
      "DURABILITY",
      ["process", "power"] as const,
      "process",
      '"process" (an answered upload survives a crash of the process) or "power" (a power cut too)',
    ),
    serviceUserIds: (read.raw("SERVICE_USER_IDS") ?? "")
      .split(",")
      .map((id) => id.trim())
      .filter(Boolean),
    tusExpireAfterMs: read.raw("TUS_EXPIRE_AFTER_MS") === undefined ? undefined : read.ms("TUS_EXPIRE_AFTER_MS", 0, 1),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"], redisExpected),
    resultWaitMs: read.ms("RESULT_WAIT_MS", 30_000),
    detectionAttempts: read.integer("DETECTION_ATTEMPTS", 3, 1, 1000, "a whole number of tries from 1 to 1000"),
  };
}

export type WorkerConfig = ReturnType<typeof readWorkerConfig>;

/** The worker's settings (worker.ts): REDIS_URL and ANNOTATIONS_URL are required. */
export function readWorkerConfig(env: NodeJS.ProcessEnv) {
  const read = new Reader(env);
  const why = "the worker needs the Redis the web processes enqueue on, and their annotations service";
  read.required("REDIS_URL", why);
  read.required("ANNOTATIONS_URL", why);
  return {
    ...common(read),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"], redisExpected) as string,
    annotationsUrl: read.url("ANNOTATIONS_URL", ["http:", "https:"], httpExpected, true) as string,
    concurrency: read.integer("WORKER_CONCURRENCY", 1, 1, 1000, "a whole number of jobs from 1 to 1000"),
    lockMs: read.ms("WORKER_LOCK_MS", 30_000, 1),
    stalledIntervalMs: read.ms("STALLED_INTERVAL_MS", 30_000, 1),
  };
}

/** Runs `read`; a {@link ConfigError} becomes its one line on stderr and exit code 1. */
export function configOrExit<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
