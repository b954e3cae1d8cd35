import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthTokenError, isMediaIntakeError, userIdFromToken } from "../src/index.ts";
import { startServer } from "./helpers/http-server.ts";

const secret = "a-test-secret-of-sufficient-length-0123456789";
const now = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, key = secret) {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(key));
}

async function refusal(token: string | undefined, options?: Parameters<typeof userIdFromToken>[1]) {
  const error = await userIdFromToken(token, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthTokenError);
  expect(isMediaIntakeError(error, "AUTH_TOKEN_INVALID")).toBe(true);
  // The token never appears in what a caller may log.
  const bare = token?.replace(/^Bearer\s*/i, "").trim();
  if (bare) {
    const text = JSON.stringify({ message: (error as Error).message, stack: (error as Error).stack, ...(error as object) });
    expect(text).not.toContain(bare);
  }
  return error as AuthTokenError;
}

describe("decoding without a key", () => {
  it("reads sub, then nameid, then the ASP.NET nameidentifier claim", async () => {
    expect(await userIdFromToken(await hs256({ sub: "user-1", nameid: "x" }))).toBe("user-1");
    expect(await userIdFromToken(await hs256({ nameid: "user-2" }))).toBe("user-2");
    const aspnet = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier";
    expect(await userIdFromToken(await hs256({ [aspnet]: "user-3" }))).toBe("user-3");
    expect(await userIdFromToken(await hs256({ sub: 42 }))).toBe("42");
  });

  it("uses a configured claim and tolerates the Bearer prefix", async () => {
    const token = await hs256({ sub: "s", oid: "azure-user" });
    expect(await userIdFromToken(`Bearer ${token}`, { claim: "oid" })).toBe("azure-user");
    expect(await userIdFromToken(`bearer   ${token}`, { claim: ["missing", "sub"] })).toBe("s");
  });

  it("still refuses an expired or not-yet-valid token", async () => {
    expect((await refusal(await hs256({ sub: "u", exp: now() - 10 }))).reason).toBe("expired");
    expect((await refusal(await hs256({ sub: "u", nbf: now() + 600 }))).reason).toBe("not-yet-valid");
  });

  it.each([
    ["missing", undefined],
    ["missing", ""],
    ["missing", "Bearer "],
    ["malformed", "garbage"],
    ["malformed", "a.b.c"],
  ])("refuses as %s: %j", async (reason, token) => {
    expect((await refusal(token)).reason).toBe(reason);
  });

  it("refuses a token without a user claim, naming the claims tried", async () => {
    const error = await refusal(await hs256({ name: "Ann", sub: "" }));
    expect(error.reason).toBe("no-user-claim");
    expect(error.message).toContain('"sub", "nameid"');
  });
});

describe("verifying with HS256", () => {
  it("accepts a token signed with the secret", async () => {
    expect(await userIdFromToken(await hs256({ sub: "u1", exp: now() + 60 }), { verify: { secret } })).toBe("u1");
  });

  it("refuses a token signed with another key", async () => {
    const error = await refusal(await hs256({ sub: "u1" }, "another-secret-of-sufficient-length-98765"), { verify: { secret } });
    expect(error.reason).toBe("bad-signature");
    expect(error.message).toBe("Reading the user ID from the bearer token: the token's signature does not verify");
  });

  it("refuses alg: none", async () => {
    const unsigned = new UnsecuredJWT({ sub: "admin" }).encode();
    const error = await refusal(unsigned, { verify: { secret } });
    expect(error.reason).toBe("bad-signature");
    expect(error.message).toBe("Reading the user ID from the bearer token: the token is signed with an algorithm that is not accepted");
  });

  it("refuses expired, not-yet-valid, wrong issuer and wrong audience", async () => {
    expect((await refusal(await hs256({ sub: "u", exp: now() - 10 }), { verify: { secret } })).reason).toBe("expired");
    expect((await refusal(await hs256({ sub: "u", nbf: now() + 600 }), { verify: { secret } })).reason).toBe("not-yet-valid");
    const token = await hs256({ sub: "u", iss: "other", aud: "other" });
    expect((await refusal(token, { verify: { secret, issuer: "https://issuer" } })).reason).toBe("claim-mismatch");
    expect((await refusal(token, { verify: { secret, audience: "annotations" } })).reason).toBe("claim-mismatch");
  });

  it("refuses a configuration with no key or two keys", async () => {
    await expect(userIdFromToken(await hs256({ sub: "u" }), { verify: {} })).rejects.toThrow(TypeError);
  });
});

describe("verifying with RS256", () => {
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let other: Awaited<ReturnType<typeof generateKeyPair>>;
  let jwks: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    keys = await generateKeyPair("RS256", { extractable: true });
    other = await generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwks = await startServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
  });
  afterAll(() => jwks.close());

  const rs256 = (claims: Record<string, unknown>, key = keys.privateKey) =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "k1" }).sign(key);

  it("accepts a token verified by a PEM public key", async () => {
    const publicKey = await exportSPKI(keys.publicKey);
    expect(await userIdFromToken(await rs256({ sub: "rs-user" }), { verify: { publicKey } })).toBe("rs-user");
    expect((await refusal(await rs256({ sub: "rs-user" }, other.privateKey), { verify: { publicKey } })).reason).toBe("bad-signature");
  });

  it("accepts a token verified through a JWKS served on loopback", async () => {
    const verify = { jwksUrl: `${jwks.url}/.well-known/jwks.json`, issuer: "https://issuer" };
    expect(await userIdFromToken(await rs256({ sub: "jwks-user", iss: "https://issuer" }), { verify })).toBe("jwks-user");
    expect((await refusal(await rs256({ sub: "x", iss: "https://issuer" }, other.privateKey), { verify })).reason).toBe("bad-signature");
  });

  it("says the key is unavailable when the JWKS cannot be fetched", async () => {
    const down = await startServer(() => {});
    const url = `${down.url}/jwks.json`;
    await down.close();
    expect((await refusal(await rs256({ sub: "x" }), { verify: { jwksUrl: url } })).reason).toBe("key-unavailable");
  });

  it("says the key is unavailable when the JWKS endpoint answers 500 or no JSON", async () => {
    for (const [status, body] of [[500, "oops"], [200, "<html>login</html>"], [200, '{"no":"keys"}']] as const) {
      const broken = await startServer((_, response) => response.writeHead(status, { "content-type": "text/html" }).end(body));
      try {
        const failure = await refusal(await rs256({ sub: "x" }), { verify: { jwksUrl: `${broken.url}/jwks-${status}-${body.length}.json` } });
        expect(failure.reason).toBe("key-unavailable");
      } finally {
        await broken.close();
      }
    }
  });
});
