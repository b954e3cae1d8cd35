// Liveness (`GET /healthz`: the process serves) and readiness (`GET /readyz`: each dependency
// answers, or 503 with what is wrong, named by the variable to look at).
import { Router } from "express";
import { PROBE_MEDIA_ID } from "../../src/index.ts";
import type { AppContext } from "./context.ts";
import type { NamedFolder } from "./folders.ts";
import { createReadiness, minFreeBytes } from "./readiness.ts";

export type Readiness = ReturnType<typeof createReadiness>;

/**
 * What `/readyz` checks for this app: the storage folders, the annotations service, and with the
 * queue (or a `redisPing` of the configuration) Redis, on the journal's and the queue's own
 * connections too.
 */
export function appReadiness(context: AppContext, folders: readonly NamedFolder[]): Readiness {
  const { client, queue, logger, config } = context;
  return createReadiness({
    annotations: { client: config.readiness?.probeClient ?? client, url: config.readiness?.annotationsUrl ?? "the annotations service" },
    folders,
    minFreeBytes: config.readiness?.minFreeBytes ?? minFreeBytes(context.maxUploadBytes),
    // With the queue: Redis answers PING, and so do the journal's and the queue's own connections.
    ...(queue || config.readiness?.redisPing
      ? {
          redisPing: async (signal: AbortSignal) => {
            await config.readiness?.redisPing?.(signal);
            await queue?.journal.list(PROBE_MEDIA_ID);
            await queue?.detections.state(PROBE_MEDIA_ID);
          },
        }
      : {}),
    ...(config.readiness?.timeoutMs ? { timeoutMs: config.readiness.timeoutMs } : {}),
    logger,
  });
}

export function healthRoutes(readiness: Readiness): Router {
  const routes = Router();
  routes.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  routes.get("/readyz", async (_req, res, next) => {
    try {
      const report = await readiness.check();
      res.status(report.ready ? 200 : 503).json({ status: report.ready ? "ready" : "not ready", checks: report.checks });
    } catch (error) {
      next(error);
    }
  });
  return routes;
}
