// The possession check (docs/possession.md): a client that holds a file proves it, and skips the
// upload of content the service already has. `POST /possession` issues a challenge for the
// client's media ID, size and name (always: a challenge says nothing of what is stored), and
// `POST /possession/:challengeId` takes its answer. A verified answer is answered exactly as
// `POST /detect` answers an upload of those bytes by the same caller; every refusal is one 403.
import express, { type RequestHandler, Router } from "express";
import { createPossessionCheck } from "../../src/index.ts";
import { AppError, type DetectionsCaller } from "./authorize.ts";
import type { AppContext } from "./context.ts";
import type { DetectionRuns } from "./detection-runs.ts";

/** The bodies are a few short fields: anything larger is refused (413) unread. */
const BODY_LIMIT = "4kb";
/** The window of the per-user limit of challenges. */
const WINDOW_MS = 60_000;

export function possessionRoutes(context: AppContext, runs: DetectionRuns): Router {
  const { auth, callerOf, inFlight, config } = context;
  const possession = createPossessionCheck({ ...context.intake, auth, ...(config.challengeStore ? { store: config.challengeStore } : {}) });
  const overLimit = perUserLimit(config.possessionChallengesPerMinute ?? 60);
  const routes = Router();

  // The token first: a caller without a valid one gets the 401, whatever the body.
  const authenticate: RequestHandler = async (req, res, next) => {
    try {
      res.locals.caller = await callerOf(req);
      next();
    } catch (error) {
      next(error);
    }
  };
  const json = express.json({ limit: BODY_LIMIT });
  const bodyOf = (body: unknown): Record<string, unknown> => (body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {});

  routes.post("/possession", authenticate, json, async (req, res, next) => {
    try {
      const caller = res.locals.caller as DetectionsCaller;
      const waitSeconds = overLimit(caller.userId);
      if (waitSeconds !== undefined) {
        throw new AppError(429, "TOO_MANY_CHALLENGES", `More than ${config.possessionChallengesPerMinute ?? 60} possession challenges in a minute; try again in ${waitSeconds} s, or upload the file.`, {
          headers: { "retry-after": String(waitSeconds) },
        });
      }
      const { mediaId, size, name } = bodyOf(req.body);
      const challenge = await possession.challenge(
        { token: req.headers.authorization, mediaId: mediaId as string, size: size as number, name: name as string },
        { signal: inFlight.signal(req, res) },
      );
      res.json({ challenge });
    } catch (error) {
      next(error);
    }
  });

  routes.post("/possession/:challengeId", authenticate, json, (req, res, next) =>
    inFlight.track(
      (async () => {
        const signal = inFlight.signal(req, res);
        try {
          const token = req.headers.authorization;
          const { digest } = bodyOf(req.body);
          const media = await possession.verify({ token, challengeId: req.params.challengeId as string, digest: digest as string }, { signal });
          // The answer of an upload of those bytes by this caller, from the same code as /detect's.
          await runs.answer(res, media, res.locals.caller as DetectionsCaller, token, signal);
        } catch (error) {
          next(error);
        }
      })(),
    ),
  );

  return routes;
}

/**
 * A fixed window per user, in this process's memory: the seconds to wait when `userId` asked for
 * more than `limit` challenges in the current minute, else `undefined`. Each wrong answer needs a
 * new challenge, so this bounds a partial holder's tries (docs/possession.md); with several
 * processes each counts its own. Windows that ended are dropped once there are many users.
 */
function perUserLimit(limit: number): (userId: string) => number | undefined {
  const windows = new Map<string, { start: number; count: number }>();
  return (userId) => {
    const now = Date.now();
    if (windows.size > 10_000) for (const [key, window] of windows) if (now - window.start >= WINDOW_MS) windows.delete(key);
    let window = windows.get(userId);
    if (!window || now - window.start >= WINDOW_MS) windows.set(userId, (window = { start: now, count: 0 }));
    window.count += 1;
    return window.count > limit ? Math.max(1, Math.ceil((window.start + WINDOW_MS - now) / 1000)) : undefined;
  };
}
