// Whether the annotations service answers the contract's route: a read of an ID that no content
// has, which a service that follows the contract answers 404 with a problem body ("no such
// media"), and a wrong base URL answers otherwise (a 404 without one, a 405, HTML).
import { AnnotationsAuthError, AnnotationsRouteMissingError, AnnotationsUnavailableError, MediaNotFoundError } from "../errors/index.ts";
import { maskUrlPasswords } from "../utils/index.ts";
import type { AnnotationsCallOptions, AnnotationsClient } from "./client.ts";

/** What {@link probeAnnotations} found (frozen). */
export type AnnotationsProbe =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /**
       * `route-missing`: the service answers, but not the contract's route (a wrong base URL);
       * `unavailable`: no answer (nothing listening, a timeout); `auth-refused`: the token was
       * refused; `failed`: anything else (a 5xx, an answer that could not be read).
       */
      readonly reason: "route-missing" | "unavailable" | "auth-refused" | "failed";
      /** What was called and what came back, e.g. `GET /api/media/…: 404 Not Found` (the service's text in it, the token taken out). */
      readonly message: string;
      /** The HTTP status the service answered, when it answered: with {@link code}, what to show where the service's own text must not go (an unauthenticated readiness answer). */
      readonly status?: number;
      /** The error's code (`ANNOTATIONS_HTTP_ERROR`, `ANNOTATIONS_UNAVAILABLE`, …), when it has one. */
      readonly code?: string;
    };

/** The ID the probe reads: well formed, and all but impossible as a content's hash. */
export const PROBE_MEDIA_ID = "0000000000000000";

/**
 * Reads `GET /api/media/0000000000000000` and says whether the annotations service answers
 * the contract's route: `ok` for a 404 with an RFC 9457 problem body (`title` or `detail`: "no
 * such media") or a record. A 404 without a problem body (an unknown route), a 405, no answer,
 * a refused token or a 5xx is not. Pass a client without retries and a `signal` with a short
 * timeout for a readiness check (an abort is `unavailable`). Never throws.
 *
 * @example
 * const probe = await probeAnnotations(client, { signal: AbortSignal.timeout(2_000) });
 * if (!probe.ok) logger.error({ reason: probe.reason }, probe.message);
 */
export async function probeAnnotations(client: AnnotationsClient, options: AnnotationsCallOptions = {}): Promise<AnnotationsProbe> {
  try {
    await client.media.get(PROBE_MEDIA_ID, options);
    return Object.freeze({ ok: true });
  } catch (error) {
    const { status, code } = error as { status?: unknown; code?: unknown };
    const notOk = (reason: "route-missing" | "unavailable" | "auth-refused" | "failed", message: string): AnnotationsProbe =>
      Object.freeze({ ok: false, reason, message: maskUrlPasswords(message), ...(typeof status === "number" ? { status } : {}), ...(typeof code === "string" ? { code } : {}) });
    if (error instanceof MediaNotFoundError) {
      if (error.problem?.title || error.problem?.detail) return Object.freeze({ ok: true });
      return notOk("route-missing", `${error.message}, without a problem body: not the contract's "no such media" (check the base URL)`);
    }
    if (error instanceof AnnotationsRouteMissingError) return notOk("route-missing", error.message);
    if (error instanceof AnnotationsAuthError) return notOk("auth-refused", error.message);
    if (error instanceof AnnotationsUnavailableError) return notOk("unavailable", error.message);
    const timedOut = (error as Error)?.name === "TimeoutError" || options.signal?.aborted;
    if (timedOut) return notOk("unavailable", `GET /api/media/${PROBE_MEDIA_ID}: no answer in time`);
    return notOk("failed", (error as Error)?.message ?? String(error));
  }
}
