// A detections service built on media-intake: every upload becomes a stored file, a Media
// record and a tracked detection run. In your own service import from "media-intake".
// The app, put together: each concern is a file of its own (context.ts the configuration,
// detection-runs.ts detection and its answer, the *-routes.ts files the routes, answer-error.ts
// the error answers); this file reads top to bottom as the order requests meet them.
import express, { type NextFunction, type Request, type Response } from "express";
import { pinoHttp } from "pino-http";
import { answerError } from "./answer-error.ts";
import { appContext, type DetectionsAppConfig } from "./context.ts";
import { detectRoutes } from "./detect-routes.ts";
import { createDetectionRuns } from "./detection-runs.ts";
import { appReadiness, healthRoutes } from "./health-routes.ts";
import { endedEarly } from "./in-flight.ts";
import { pageRoutes } from "./page-routes.ts";
import { possessionRoutes } from "./possession-routes.ts";
import { readRoutes } from "./read-routes.ts";
import { logMisconfiguration, storageFolders } from "./readiness.ts";
import { tusRoute } from "./tus-route.ts";

export type { DetectionsAppConfig, QueuedDetection } from "./context.ts";

/** The paths scrapers and orchestrators poll, left out of the request log. */
const PROBE_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** The example service: its routes, request log and error answers, built from `config` (server.ts reads it from the environment). */
export function createDetectionsApp(config: DetectionsAppConfig): express.Express {
  const context = appContext(config);
  const folders = storageFolders(context.directories, config.tusUploadsDir);
  const readiness = appReadiness(context, folders);
  const runs = createDetectionRuns(context);
  const { tus, routes: tusRoutes } = tusRoute(context, runs);

  const app = express();
  app.disable("x-powered-by");
  app.locals.readiness = readiness;
  app.locals.tus = tus;
  // For the graceful stop (server.ts): the requests' work, aborted and waited for when it cuts them.
  app.locals.inFlight = context.inFlight;
  // One line per request; never headers (the bearer token), never bodies. Not the probes: a
  // probe polled every few seconds would bury the uploads, and readiness logs its own changes.
  app.use(
    pinoHttp({
      logger: context.logger,
      autoLogging: { ignore: (req) => PROBE_PATHS.has((req.url ?? "").split("?")[0] ?? "") },
      serializers: { req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }) },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? "error" : "info"),
      // A 5xx without an error is logged with its status, not with pino-http's made-up stack
      // ("failed with status code 503"): its cause has a line of its own ("request failed").
      customErrorObject: (_req, res, error, value: Record<string, unknown>) => (error.message === `failed with status code ${res.statusCode}` ? { ...value, err: undefined } : value),
      customErrorMessage: (_req, res, error) => (error.message === `failed with status code ${res.statusCode}` ? `request answered ${res.statusCode}` : "request errored"),
    }),
  );

  app.use(tusRoutes);
  app.use(healthRoutes(readiness));
  // The upload page (GET /) and its modules: static, no token needed to load it.
  app.use(pageRoutes());
  app.use(detectRoutes(context, runs));
  app.use(readRoutes(context, runs));
  app.use(possessionRoutes(context, runs));

  app.use((req, res) => {
    res.status(404).json({ error: { code: "NOT_FOUND", message: `No route for ${req.method} ${req.path}.` } });
  });
  // Every error, answered as JSON; a storage folder or ANNOTATIONS_URL at fault is logged by its variable.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    // A client gone (or a request the stop cut and answered): nobody to answer, nothing failed.
    if (endedEarly(error, req, res)) {
      req.log.info({ reason: (error as Error)?.message }, "request ended before its answer (the client went away, or the stop cut it)");
      return;
    }
    logMisconfiguration(error, req, folders);
    answerError(error, req, res, context.drainLimitBytes);
  });
  return app;
}
