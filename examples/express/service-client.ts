// The annotations client of the example's processes (web and worker), from their settings
// (config.ts): its own token is the service's (SERVICE_TOKEN, or minted from JWT_SECRET, or
// unsigned for a dev server), for what outlives a request; each request passes its caller's token.
import { SignJWT, UnsecuredJWT } from "jose";
import { type AnnotationsClient, type AnnotationsClientOptions, createAnnotationsClient } from "../../src/index.ts";

export interface ServiceClientSettings {
  jwtSecret: string | undefined;
  serviceToken: string | undefined;
  annotationsTimeoutMs: number;
  annotationsDeadlineMs: number;
}

export async function serviceClientFrom(settings: ServiceClientSettings, baseUrl: string, extra: Pick<AnnotationsClientOptions, "retry"> = {}): Promise<AnnotationsClient> {
  const secret = settings.jwtSecret;
  const token =
    settings.serviceToken ??
    (secret
      ? await new SignJWT({ sub: "detections-service" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("12h").sign(new TextEncoder().encode(secret))
      : new UnsecuredJWT({ sub: "detections-service" }).encode());
  return createAnnotationsClient({
    baseUrl,
    token,
    timeoutMs: settings.annotationsTimeoutMs,
    totalTimeoutMs: settings.annotationsDeadlineMs,
    ...extra,
  });
}
