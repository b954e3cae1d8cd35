// The possession check (docs/possession.md): a client that holds a file proves it, and skips the
// upload of content the service already has. `POST /possession` issues a challenge for the
// client's media ID, size and name (always: a challenge says nothing of what is stored), and
// `POST /possession/:challengeId` takes its answer. A verified answer is answered exactly as
// `POST /detect` answers an upload of those bytes by the same caller; every refusal is one 403.
// The limits (possession-limits.ts): challenges per user and minute, refused answers per user and
// media ID and hour (429, and the client uploads). A body that is not the route's JSON is told
// what to send, before any challenge is touched.
import express, { type Request, type RequestHandler, Router } from "express";
import { createPossessionCheck, isMediaId, isMediaIntakeError, normalizeMediaId, type PossessionNotProvenError } from "../../src/index.ts";
import { AppError, type DetectionsCaller } from "./authorize.ts";
import type { AppContext } from "./context.ts";
import type { DetectionRuns } from "./detection-runs.ts";
import { perUserLimit, refusalCap } from "./possession-limits.ts";

/** The bodies are a few short fields: anything larger is refused (413) unread. */
const BODY_LIMIT = "4kb";
/** What each route takes, as its messages name it. */
const CHALLENGE_BODY = '{ "mediaId", "size", "name" }';
const ANSWER_BODY = '{ "digest" }';

export function possessionRoutes(context: AppContext, runs: DetectionRuns): Router {
  const { auth, callerOf, inFlight, config } = context;
  const possession = createPossessionCheck({ ...context.intake, auth, ...(config.challengeStore ? { store: config.challengeStore } : {}) });
  const perMinute = config.possessionChallengesPerMinute ?? 60;
  const perHour = config.possessionRefusalsPerHour ?? 3;
  const overLimit = perUserLimit(perMinute);
  const refusals = refusalCap(perHour);
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
  const json = (expected: string): RequestHandler => {
    const parse = express.json({ limit: BODY_LIMIT });
    return (req, res, next) => parse(req, res, (error?: unknown) => next(error === undefined ? undefined : bodyError(error, expected)));
  };

  routes.post("/possession", authenticate, json(CHALLENGE_BODY), async (req, res, next) => {
    try {
      const caller = res.locals.caller as DetectionsCaller;
      const waitSeconds = overLimit(caller.userId);
      if (waitSeconds !== undefined) {
        throw new AppError(429, "TOO_MANY_CHALLENGES", `More than ${perMinute} possession challenges in a minute; try again in ${waitSeconds} s, or upload the file.`, {
          headers: { "retry-after": String(waitSeconds) },
        });
      }
      if (req.body === undefined && !hasBody(req)) throw new AppError(400, "BAD_REQUEST", `Expected a JSON body ${CHALLENGE_BODY} (Content-Type: application/json).`);
      const { mediaId, size, name } = jsonFields(req, CHALLENGE_BODY);
      if (typeof name !== "string") {
        throw new AppError(400, "BAD_REQUEST", `Expected "name" to be the file's name, a string such as "clip.mp4" (it decides the media type), got ${shown(name)}.`);
      }
      const waitForMedia = isMediaId(mediaId) ? refusals.waitFor(caller.userId, mediaId) : undefined;
      if (waitForMedia !== undefined) {
        throw new AppError(429, "TOO_MANY_CHALLENGES", `${perHour} possession answers for media ${normalizeMediaId(mediaId)} were refused (or are awaited) within an hour; upload the file, or try again in ${waitForMedia} s.`, {
          headers: { "retry-after": String(waitForMedia) },
        });
      }
      const challenge = await possession.challenge(
        { token: req.headers.authorization, mediaId: mediaId as string, size: size as number, name },
        { signal: inFlight.signal(req, res) },
      );
      refusals.issued(caller.userId, normalizeMediaId(mediaId), challenge);
      res.json({ challenge });
    } catch (error) {
      next(error);
    }
  });

  routes.post("/possession/:challengeId", authenticate, json(ANSWER_BODY), (req, res, next) =>
    inFlight.track(
      (async () => {
        const signal = inFlight.signal(req, res);
        const caller = res.locals.caller as DetectionsCaller;
        const challengeId = req.params.challengeId as string;
        try {
          const token = req.headers.authorization;
          // An answer the server could not read burns nothing: no body is an answer without a digest.
          const { digest } = jsonFields(req, ANSWER_BODY);
          try {
            const media = await possession.verify({ token, challengeId, digest: digest as string }, { signal });
            // The answer of an upload of those bytes by this caller, from the same code as /detect's.
            await runs.answer(res, media, caller, token, signal);
          } catch (error) {
            // Counted here, whichever process issued the challenge: the refusal names its media ID.
            const { mediaId } = isMediaIntakeError(error, "POSSESSION_NOT_PROVEN") ? (error as PossessionNotProvenError) : { mediaId: undefined };
            if (mediaId !== undefined) refusals.refused(caller.userId, mediaId);
            throw error;
          } finally {
            // Taken by the check whatever came of it: no longer awaited.
            refusals.answered(challengeId);
          }
        } catch (error) {
          next(error);
        }
      })(),
    ),
  );

  return routes;
}

/** Whether the request has a body (one the JSON parser skipped when its type is not JSON). */
function hasBody(req: Request): boolean {
  return req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
}

/**
 * The fields of the JSON object the route takes; `{}` without a body. A body the JSON parser left
 * (its Content-Type not JSON) is a 415 that says so, and JSON that is no object a 400.
 */
function jsonFields(req: Request, expected: string): Record<string, unknown> {
  const { body } = req;
  if (body === undefined) {
    if (!hasBody(req)) return {};
    throw new AppError(415, "UNSUPPORTED_CONTENT_TYPE", `Send the body as JSON, ${expected}, with Content-Type: application/json; got ${shown(req.headers["content-type"] ?? "no Content-Type")}.`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new AppError(400, "BAD_REQUEST", `Expected a JSON object ${expected}, got ${Array.isArray(body) ? "an array" : shown(body)}.`);
  return body as Record<string, unknown>;
}

/** The JSON parser's refusals, in words that say what to send (its own texts are a parser's). */
function bodyError(error: unknown, expected: string): unknown {
  const { type, charset, encoding } = (error ?? {}) as { type?: string; charset?: string; encoding?: string };
  if (type === "entity.too.large") return new AppError(413, "PAYLOAD_TOO_LARGE", `The body is over this route's limit of 4 KiB: send only ${expected}, as JSON.`);
  if (type === "entity.parse.failed") return new AppError(400, "BAD_REQUEST", `The body is not valid JSON: send ${expected} as JSON, with Content-Type: application/json.`);
  if (type === "charset.unsupported") return new AppError(415, "UNSUPPORTED_CONTENT_TYPE", `The body's charset ${shown(charset)} is not one of JSON's: send ${expected} as UTF-8 (Content-Type: application/json).`);
  if (type === "encoding.unsupported") return new AppError(415, "UNSUPPORTED_CONTENT_ENCODING", `Content-Encoding ${shown(encoding)} is not supported: send the body as it is, or gzip, deflate or br.`);
  return error;
}

/** A value as a message shows it: JSON, cut to 64 characters. */
function shown(value: unknown): string {
  const text = value === undefined ? "nothing" : (JSON.stringify(value) ?? String(value));
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
