import { createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { checkOptionsOf, type OptionChecks } from "../utils/index.ts";
import type { createRemoteJWKSet, JWTPayload } from "jose";
import { AuthTokenError } from "../errors/index.ts";

/** docs/contract.md "UserId from the JWT": the claims tried, in order, when none is configured. */
export const defaultUserIdClaims: readonly string[] = [
  "sub",
  "nameid",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
];

/** How a token's signature and claims are verified; give exactly one of `secret`, `publicKey`, `jwksUrl`. */
export interface TokenVerification {
  /** An HS256 shared secret. */
  secret?: string | Uint8Array;
  /** A public key: PEM text (`-----BEGIN PUBLIC KEY-----`) or a `KeyObject`. */
  publicKey?: string | KeyObject;
  /** A JWKS URL, fetched and cached (keys are looked up by `kid`). */
  jwksUrl?: string | URL;
  /** The required `iss`, when set. */
  issuer?: string | string[];
  /** The required `aud`, when set. */
  audience?: string | string[];
  /**
   * The accepted algorithms.
   * @default ["HS256"] with `secret`; RS256, RS384, RS512, PS256, ES256, ES384, EdDSA otherwise
   */
  algorithms?: string[];
  /**
   * Seconds of clock skew tolerated for `exp` and `nbf`.
   * @default 0
   */
  clockToleranceSec?: number;
}

/** Options of {@link userIdFromToken}. */
export interface UserIdFromTokenOptions {
  /**
   * The claim (or claims, tried in order) that hold the user ID.
   * @default ["sub", "nameid", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"]
   */
  claim?: string | readonly string[];
  /**
   * Verify the signature, `exp`, `nbf` (and `iss`/`aud` when given). Without it the token is
   * only decoded, and an expired or not-yet-valid token is still refused: use that only behind
   * a gateway that verified it.
   */
  verify?: TokenVerification;
}

const asymmetric = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
const keyCache = new Map<string, KeyObject>();
const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** jose, loaded with the first token (not at import: a service that only computes IDs never loads it). */
let jose: typeof import("jose") | undefined;

/**
 * Tokens verified lately, per verification options (the same object, as a service passes it on
 * every request): a client sending many uploads with one token is verified once a minute, not
 * once per call. An entry lives until the token's `exp` or for 60 s, whichever comes first.
 */
const verifiedTokens = new WeakMap<TokenVerification, Map<string, { payload: JWTPayload; until: number }>>();
const VERIFIED_FOR_MS = 60_000;
const VERIFIED_MAX = 1_000;

/**
 * The user ID of the caller, from their JWT (a `Bearer ` prefix is tolerated).
 *
 * @throws {AuthTokenError} missing, malformed, expired, not yet valid, badly signed, wrong
 * issuer or audience, or no user claim; `reason` says which. Never contains the token.
 * @example
 * const userId = await userIdFromToken(req.headers.authorization, { verify: { secret: process.env.JWT_SECRET } });
 */
export async function userIdFromToken(token: string | undefined | null, options: UserIdFromTokenOptions = {}): Promise<string> {
  const claims = checkUserIdFromTokenOptions(options, checkOptionsOf("userIdFromToken"));
  const jwt = typeof token === "string" ? token.replace(/^\s*Bearer\s+/i, "").trim() : "";
  if (jwt === "") throw new AuthTokenError("missing", "no token was given");
  jose ??= await import("jose");
  const payload = options.verify ? await verifiedOnce(jwt, options.verify) : decoded(jwt);
  for (const claim of claims) {
    const value = payload[claim];
    if ((typeof value === "string" && value.trim() !== "") || (typeof value === "number" && Number.isFinite(value))) {
      return String(value);
    }
  }
  throw new AuthTokenError("no-user-claim", `the token has no user ID in ${claims.map((c) => `"${c}"`).join(", ")}`);
}

/**
 * Checks the options of {@link userIdFromToken}, as `check`'s function (the intake, multer and
 * tus check their `auth` when it is given), and returns the claims to try. Never shows a secret.
 *
 * @internal shared through auth/index.ts; not exported by the package.
 */
export function checkUserIdFromTokenOptions(options: UserIdFromTokenOptions | undefined, check: OptionChecks): readonly string[] {
  check.known(options, ["claim", "verify"]);
  const claim = options?.claim;
  const list = claim === undefined ? defaultUserIdClaims : typeof claim === "string" ? [claim] : claim;
  if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === "string" && c !== "")) {
    throw new TypeError(`${check.of}: expected \`${check.label("claim")}\` to be a claim name or a list of them, got ${JSON.stringify(claim)}.`);
  }
  const verify = options?.verify;
  if (verify !== undefined) {
    const checkVerify = check.nested("verify");
    checkVerify.known(verify, ["secret", "publicKey", "jwksUrl", "issuer", "audience", "algorithms", "clockToleranceSec"]);
    if ([verify.secret, verify.publicKey, verify.jwksUrl].filter((v) => v !== undefined).length !== 1) {
      const names = ["secret", "publicKey", "jwksUrl"].map((name) => `\`${checkVerify.label(name)}\``);
      throw new TypeError(`${check.of}: expected exactly one of ${names[0]}, ${names[1]} and ${names[2]}.`);
    }
    if (verify.secret !== undefined && !(verify.secret.length > 0)) throw new TypeError(`${check.of}: expected \`${checkVerify.label("secret")}\` to be a non-empty secret.`);
  }
  return list;
}

function decoded(jwt: string): JWTPayload {
  let payload: JWTPayload;
  try {
    payload = (jose as typeof import("jose")).decodeJwt(jwt);
  } catch (error) {
    throw new AuthTokenError("malformed", "the token is not a well-formed JWT", error);
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp === "number" && payload.exp <= now) throw new AuthTokenError("expired", "the token has expired");
  if (typeof payload.nbf === "number" && payload.nbf > now) throw new AuthTokenError("not-yet-valid", "the token is not valid yet");
  return payload;
}

/** {@link verified}, or its payload when this token passed the same options within the last minute. */
async function verifiedOnce(jwt: string, verify: TokenVerification): Promise<JWTPayload> {
  let cache = verifiedTokens.get(verify);
  if (!cache) verifiedTokens.set(verify, (cache = new Map()));
  const now = Date.now();
  const hit = cache.get(jwt);
  if (hit && hit.until > now) return hit.payload;
  const payload = await verified(jwt, verify);
  if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value as string);
  const expires = typeof payload.exp === "number" ? payload.exp * 1000 : Number.POSITIVE_INFINITY;
  cache.set(jwt, { payload, until: Math.min(now + VERIFIED_FOR_MS, expires) });
  return payload;
}

async function verified(jwt: string, verify: TokenVerification): Promise<JWTPayload> {
  const { createRemoteJWKSet, jwtVerify } = jose as typeof import("jose");
  const options = {
    algorithms: verify.algorithms ?? (verify.secret !== undefined ? ["HS256"] : asymmetric),
    clockTolerance: verify.clockToleranceSec ?? 0,
    ...(verify.issuer !== undefined ? { issuer: verify.issuer } : {}),
    ...(verify.audience !== undefined ? { audience: verify.audience } : {}),
  };
  if (verify.jwksUrl !== undefined) {
    const url = String(verify.jwksUrl);
    let jwks = jwksCache.get(url);
    if (!jwks) jwksCache.set(url, (jwks = createRemoteJWKSet(new URL(url))));
    try {
      return (await jwtVerify(jwt, jwks, options)).payload;
    } catch (error) {
      // The token was decoded above: anything but a verdict on it (the fetch refused, a 500,
      // a body that is no JWKS) is the key set being unavailable, never a malformed token.
      if (tokenVerdicts.has(String((error as { code?: unknown }).code))) throw mapJoseError(error);
      throw new AuthTokenError("key-unavailable", `the JWKS at ${url} could not be fetched or read`, error);
    }
  }
  const key = keyFor(verify);
  try {
    return (await jwtVerify(jwt, key, options)).payload;
  } catch (error) {
    throw mapJoseError(error);
  }
}

function keyFor(verify: TokenVerification): KeyObject {
  if (verify.secret !== undefined) {
    return createSecretKey(typeof verify.secret === "string" ? Buffer.from(verify.secret, "utf8") : verify.secret);
  }
  const key = verify.publicKey;
  if (typeof key !== "string") return key as KeyObject;
  let cached = keyCache.get(key);
  if (!cached) keyCache.set(key, (cached = createPublicKey(key)));
  return cached;
}

/** jose's codes that judge the token itself, not the key set. */
const tokenVerdicts = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWS_INVALID",
  "ERR_JWT_INVALID",
]);

function mapJoseError(error: unknown): Error {
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return new AuthTokenError("expired", "the token has expired", error);
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return claim === "nbf"
        ? new AuthTokenError("not-yet-valid", "the token is not valid yet", error)
        : new AuthTokenError("claim-mismatch", `the token's "${claim ?? "?"}" claim is not the one required`, error);
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new AuthTokenError("bad-signature", "the token's signature does not verify", error);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return new AuthTokenError("bad-signature", "the token is signed with an algorithm that is not accepted", error);
    case "ERR_JWKS_NO_MATCHING_KEY":
      return new AuthTokenError("bad-signature", "no key of the JWKS matches the token", error);
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return new AuthTokenError("key-unavailable", "the JWKS could not be fetched or read", error);
    default:
      return new AuthTokenError("malformed", "the token is not a well-formed JWT", error);
  }
}
