import { MediaIntakeError } from "./base.ts";

/** Why a caller's token was refused. */
export type AuthTokenFailure =
  | "missing"
  | "malformed"
  | "expired"
  | "not-yet-valid"
  | "bad-signature"
  | "claim-mismatch"
  | "no-user-claim"
  | "key-unavailable";

/**
 * The caller's JWT was missing, malformed, expired, not yet valid, badly signed, for another
 * issuer or audience, or carried no user ID (a 401 for an HTTP caller). The message names the
 * reason, never the token.
 */
export class AuthTokenError extends MediaIntakeError {
  /** Why the token was refused. */
  readonly reason: AuthTokenFailure;

  constructor(reason: AuthTokenFailure, detail: string, cause?: unknown) {
    super(`Reading the user ID from the bearer token: ${detail}`, { code: "AUTH_TOKEN_INVALID", cause });
    this.name = "AuthTokenError";
    this.reason = reason;
  }
}
