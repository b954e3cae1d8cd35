// The annotations client of the example's processes (web and worker), from the environment:
// its own token is the service's (SERVICE_TOKEN, or minted from JWT_SECRET, or unsigned for a
// dev server), for what outlives a request; each request passes its caller's token.
import { SignJWT, UnsecuredJWT } from "jose";
import { type AnnotationsClient, type AnnotationsClientOptions, createAnnotationsClient } from "../../src/index.ts";

export async function serviceClientFrom(env: NodeJS.ProcessEnv, baseUrl: string, extra: Pick<AnnotationsClientOptions, "retry"> = {}): Promise<AnnotationsClient> {
  const secret = env.JWT_SECRET;
  const token =
    env.SERVICE_TOKEN ??
    (secret
      ? await new SignJWT({ sub: "detections-service" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("12h").sign(new TextEncoder().encode(secret))
      : new UnsecuredJWT({ sub: "detections-service" }).encode());
  return createAnnotationsClient({
    baseUrl,
    token,
    timeoutMs: Number(env.ANNOTATIONS_TIMEOUT_MS ?? 10_000),
    totalTimeoutMs: Number(env.ANNOTATIONS_DEADLINE_MS ?? 60_000),
    ...extra,
  });
}
