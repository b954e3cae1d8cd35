// A password in the annotations client's base URL (`http://user:password@host`) never shows in
// an error of the client or the probe: it reads `http://user:***@host`.
import { inspect } from "node:util";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";
import { createAnnotationsClient, probeAnnotations } from "../src/index.ts";
import { maskUrlPasswords } from "../src/utils/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A real annotations service on loopback, its URL with `svc:annpw@` in it. */
async function withCredentials(): Promise<string> {
  const server = await startDevAnnotationsServer({ dbPath: join(await makeTempDir(), "annotations.db") });
  closing.push(() => server.close());
  const url = new URL(server.url);
  url.username = "svc";
  url.password = "annpw";
  return url.href;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe("a password in the annotations base URL", () => {
  it("is masked in the error of a call (fetch refuses such a URL and quotes it), its stack and its inspection", async () => {
    const baseUrl = await withCredentials();
    const client = createAnnotationsClient({ baseUrl, token: "t", retry: false });
    const error = await failure(client.media.get("0000000000000001"));
    expect(error.message).toContain("http://svc:***@127.0.0.1:");
    expect(inspect(error)).not.toContain("annpw");
    expect(String(error.stack)).not.toContain("annpw");
  });

  it("is masked in the probe's message", async () => {
    const probe = await probeAnnotations(createAnnotationsClient({ baseUrl: await withCredentials(), token: "t", retry: false }));
    expect(probe).toMatchObject({ ok: false, message: expect.stringContaining("svc:***@") });
    expect(JSON.stringify(probe)).not.toContain("annpw");
  });

  it("is masked through an error's causes, with retries too", async () => {
    const fetch = () => Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED http://svc:annpw@10.0.0.1/api"), { code: "ECONNREFUSED" }) }));
    for (const retry of [false, { retries: 1, baseDelayMs: 1 }] as const) {
      const client = createAnnotationsClient({ baseUrl: "http://svc:annpw@10.0.0.1", token: "t", retry, fetch });
      const error = await failure(client.media.updateStatus("0000000000000001", 2));
      expect(inspect(error, { depth: 10 })).not.toContain("annpw");
    }
  });

  it("is masked in the refusal of a base URL that is not http(s)", () => {
    expect(() => createAnnotationsClient({ baseUrl: "ftp://svc:annpw@host/x", token: "t" })).toThrow('got "ftp://svc:***@host/x"');
  });

  it("maskUrlPasswords masks every URL's password, and leaves a user without one alone", () => {
    expect(maskUrlPasswords("a http://u:p@h/x and rediss://:s3cr%40t@r:6380 and https://only@h")).toBe("a http://u:***@h/x and rediss://:***@r:6380 and https://only@h");
  });
});
