// Readiness (`GET /readyz`): whether this process can take uploads now, with what is wrong named by
// the variable to look at. Each check runs on demand, bounded in time; a dependency that is down
// never stops the start, and the state changes are logged (an error naming the variable when a
// check fails, info when it passes again).
import { constants } from "node:fs";
import { access, mkdir, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { type AnnotationsClient, isMediaIntakeError, PROBE_MEDIA_ID, probeAnnotations } from "../../src/index.ts";
import { withoutPassword, withoutPasswords } from "./config.ts";
import { folderApart, folderName, type NamedFolder, whyUnwritable } from "./folders.ts";

/** One check's outcome: `ok`, or what is wrong and the variable to look at. */
export type CheckResult = { ok: true } | { ok: false; variable: string; message: string };

/** What `/readyz` answers: 200 `{ status: "ready" }` or 503 `{ status: "not ready" }`, with every check. */
export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export interface ReadinessOptions {
  /** The annotations service (`ANNOTATIONS_URL`): a client without retries is best for the probe. */
  annotations?: { client: AnnotationsClient; url: string };
  /** The storage folders, by their variables: writable, and on one file system. */
  folders: readonly NamedFolder[];
  /** Redis (`REDIS_URL`), when configured: resolves once it answered PING. */
  redisPing?: (signal: AbortSignal) => Promise<unknown>;
  /** The free space under which a storage folder is not ready (see {@link minFreeBytes}). @default 64 MiB */
  minFreeBytes?: number;
  /** How long one check may take. @default 2_000 */
  timeoutMs?: number;
  logger?: Logger;
}

/** The most free space `/readyz` asks of a storage folder: 64 MiB. */
export const FREE_SPACE_FLOOR_BYTES = 64 * 2 ** 20;

/**
 * The free space under which a storage folder is not ready: the smaller of MAX_UPLOAD_BYTES and
 * 64 MiB. Less than one largest upload's room, or than 64 MiB, and uploads are about to get 507;
 * an orchestrator sends new ones elsewhere. A floor, not a promise: a large upload can still
 * find the disk full.
 */
export function minFreeBytes(maxUploadBytes: number | undefined): number {
  return Math.min(maxUploadBytes ?? FREE_SPACE_FLOOR_BYTES, FREE_SPACE_FLOOR_BYTES);
}

/** `bytes` for a reader: 12.5 MiB, 800 KiB, 512 bytes. */
function mebibytes(bytes: number): string {
  if (bytes >= 2 ** 20) return `${Number((bytes / 2 ** 20).toFixed(1))} MiB`;
  if (bytes >= 2 ** 10) return `${Number((bytes / 2 ** 10).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

/**
 * Each folder (made when missing) must be writable (`access`: a read-only mount or a missing
 * permission fails it, and no probe file is ever left behind), each must be on the file system
 * of the first ({@link folderApart}, the start's own check and wording), and each must have
 * `minFree` bytes free for the service's user (`statfs`).
 */
export async function checkFolders(folders: readonly NamedFolder[], minFree = FREE_SPACE_FLOOR_BYTES): Promise<CheckResult> {
  for (const folder of folders) {
    const { variable, path } = folder;
    try {
      await mkdir(path, { recursive: true });
      await access(path, constants.W_OK);
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      return { ok: false, variable, message: `${folderName(folder)} cannot be written: ${whyUnwritable(code)} (${code ?? "error"}).` };
    }
  }
  const [first, ...rest] = folders;
  const apart = first && (await folderApart(first, rest));
  if (apart) return { ok: false, variable: apart.variable, message: apart.message };
  for (const folder of folders) {
    const { bavail, bsize } = await statfs(folder.path);
    if (bavail * bsize < minFree) {
      return { ok: false, variable: folder.variable, message: `${folderName(folder)} has ${mebibytes(bavail * bsize)} free, under the ${mebibytes(minFree)} an upload may need: uploads would fail with 507. Free space on its volume.` };
    }
  }
  return { ok: true };
}

async function withTimeout(what: string, ms: number, run: (signal: AbortSignal) => Promise<CheckResult>, variable: string): Promise<CheckResult> {
  const signal = AbortSignal.timeout(ms);
  try {
    return await Promise.race([
      run(signal),
      new Promise<CheckResult>((resolve) => signal.addEventListener("abort", () => resolve({ ok: false, variable, message: `${what}: no answer within ${ms} ms.` }), { once: true })),
    ]);
  } catch (error) {
    return { ok: false, variable, message: withoutPasswords(`${what}: ${(error as Error)?.message ?? String(error)}`) };
  }
}

/** The readiness of the service: `check()` runs every check at once and logs what changed. */
export function createReadiness(options: ReadinessOptions): { check(): Promise<ReadinessReport> } {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const last = new Map<string, boolean>();
  const checks: Record<string, () => Promise<CheckResult>> = {};
  const { annotations, redisPing } = options;
  if (annotations) {
    // Never a password (config.ts refuses one in ANNOTATIONS_URL; a URL given in code may hold one).
    const url = withoutPassword(annotations.url);
    checks.annotations = () =>
      withTimeout(`ANNOTATIONS_URL (${url})`, timeoutMs, async (signal) => {
        const probe = await probeAnnotations(annotations.client, { signal });
        if (probe.ok) return { ok: true };
        const hint = probe.reason === "route-missing" ? "answers, but not the contract's route /api/media: is its base path right?" : probe.reason === "unavailable" ? "cannot be reached" : probe.reason === "auth-refused" ? "refused the service's token (SERVICE_TOKEN or JWT_SECRET)" : "failed";
        // The service answered: its status and the error's code, never its text (this answer
        // needs no token, and a service may echo the request's headers in its errors).
        const what = probe.status === undefined ? withoutPasswords(probe.message) : `GET /api/media/${PROBE_MEDIA_ID} answered ${probe.status}${probe.code ? ` (${probe.code})` : ""}`;
        return { ok: false, variable: "ANNOTATIONS_URL", message: `ANNOTATIONS_URL (${url}) ${hint} — ${what}` };
      }, "ANNOTATIONS_URL");
  }
  if (redisPing) {
    checks.redis = () =>
      withTimeout("REDIS_URL", timeoutMs, async (signal) => {
        try {
          await redisPing(signal);
          return { ok: true };
        } catch (error) {
          return { ok: false, variable: "REDIS_URL", message: `REDIS_URL does not answer PING: ${(error as Error)?.message ?? String(error)}` };
        }
      }, "REDIS_URL");
  }
  const folderVariables = [...new Set(options.folders.map((folder) => folder.variable))].join(", ");
  checks.storage = () => withTimeout(folderVariables, timeoutMs, () => checkFolders(options.folders, options.minFreeBytes), options.folders[0]?.variable ?? "VIDEOS_DIR");
  return {
    async check() {
      const names = Object.keys(checks);
      const results = await Promise.all(names.map((name) => (checks[name] as () => Promise<CheckResult>)()));
      const report: ReadinessReport = { ready: results.every((result) => result.ok), checks: Object.fromEntries(names.map((name, i) => [name, results[i] as CheckResult])) };
      for (const [name, result] of Object.entries(report.checks)) {
        const before = last.get(name);
        if (before === result.ok) continue;
        last.set(name, result.ok);
        if (!result.ok) options.logger?.error({ check: name, variable: result.variable }, `not ready: ${result.message}`);
        else if (before === false) options.logger?.info({ check: name }, `${name} is ready again`);
      }
      return report;
    },
  };
}

/** The folders the service writes, by their variables (the tus folder, TUS_UPLOADS_DIR, by default under VIDEOS_DIR). */
export function storageFolders(directories: { videosDir: string; imagesDir: string }, tusUploadsDir?: string): NamedFolder[] {
  return [
    { variable: "VIDEOS_DIR", path: directories.videosDir },
    { variable: "IMAGES_DIR", path: directories.imagesDir },
    tusUploadsDir ? { variable: "TUS_UPLOADS_DIR", path: tusUploadsDir } : { variable: "TUS_UPLOADS_DIR", path: join(directories.videosDir, ".media-intake-uploads"), unsetNote: "the default under VIDEOS_DIR" },
  ];
}

/** The variable of the storage folder a path is in (the longest match), for a log line. */
export function folderVariableOf(path: string | undefined, folders: readonly NamedFolder[]): NamedFolder | undefined {
  if (!path) return undefined;
  return folders.filter((folder) => path === folder.path || path.startsWith(`${folder.path}/`) || dirname(path) === folder.path).sort((a, b) => b.path.length - a.path.length)[0];
}

/**
 * A Redis connection of its own for the readiness PING (ioredis, loaded only with REDIS_URL):
 * no offline queue, so a PING while Redis is away fails at once instead of waiting; its
 * connection errors are the check's to report, never stacks on stderr. A PING during a
 * connection attempt waits for its outcome on the pinger's own two listeners, never adding one
 * to the connection: however many checks run, while Redis is down or up, its listeners stay put.
 */
export async function redisPinger(url: string): Promise<{ ping: (signal: AbortSignal) => Promise<unknown>; close: () => Promise<void>; connection: Redis }> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: (times) => Math.min(times * 200, 2_000) });
  let lastError: Error | undefined;
  /** The pings waiting for the connection attempt under way: told of its "ready" or its "error". */
  const waiting = new Set<(error?: Error) => void>();
  redis.on("error", (error: Error) => {
    lastError = error;
    for (const settle of waiting) settle(error);
  });
  redis.on("ready", () => {
    lastError = undefined;
    for (const settle of waiting) settle();
  });
  return {
    ping: async (signal) => {
      try {
        // The first connection is waited for (within the check's time); a lost one fails at once.
        if (redis.status === "connecting" || redis.status === "connect") {
          await new Promise<void>((resolve, reject) => {
            const settle = (error?: Error) => {
              waiting.delete(settle);
              signal.removeEventListener("abort", aborted);
              if (error) reject(error);
              else resolve();
            };
            const aborted = () => settle(lastError ?? new Error("not connected"));
            waiting.add(settle);
            signal.addEventListener("abort", aborted, { once: true });
            if (signal.aborted) aborted();
          });
        }
        return await redis.ping();
      } catch (error) {
        throw new Error(lastError ? `${lastError.message}` : (error as Error).message, { cause: error });
      }
    },
    close: async () => {
      redis.disconnect();
    },
    connection: redis,
  };
}

/**
 * A failure the operator fixes, logged at error with the variable to look at: a storage folder
 * that cannot be written (`VIDEOS_DIR`, `IMAGES_DIR`, `TUS_UPLOADS_DIR`), or the annotations
 * service without the contract's route (`ANNOTATIONS_URL`).
 */
export function logMisconfiguration(error: unknown, req: { log: Logger }, folders: readonly NamedFolder[]): void {
  if (isMediaIntakeError(error, "MEDIA_RECORD_PENDING") && isMediaIntakeError(error.cause, "ANNOTATIONS_ROUTE_MISSING")) {
    req.log.error({ variable: "ANNOTATIONS_URL", mediaId: (error as { id?: string }).id }, `ANNOTATIONS_URL has no route POST /api/media (is its base path right?): ${withoutPasswords(error.cause.message)}; the upload is kept and its record created once the route answers`);
    return;
  }
  const code = (error as { code?: unknown })?.code;
  if (code !== "MEDIA_WRITE_FAILED" && code !== "JOURNAL_UNAVAILABLE" && !(error as NodeJS.ErrnoException)?.syscall) return;
  const where = (error as { target?: string; location?: string; path?: string }) ?? {};
  const folder = folderVariableOf(where.target ?? where.location ?? where.path, folders);
  if (folder) req.log.error({ variable: folder.variable, folder: folder.path }, `${folderName(folder)} cannot be written: ${(error as Error).message}`);
}
