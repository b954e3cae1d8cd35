// @opentelemetry/api is an optional peer: without it (its resolution failing, as Node fails it for
// a package that is not installed), the library works as before and says nothing.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { useDevFixture } from "./helpers/fixture.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const node = resolve(root, "node_modules/.bin/node");
const fixture = useDevFixture({ secret: "a".repeat(32) });

/** The child's intake and tracked run, with or without `--import` of the hook that hides @opentelemetry/api. */
async function intakeInChild(hidden: boolean) {
  const config = { annotationsUrl: fixture.annotations.url, serviceToken: fixture.serviceToken, token: fixture.token, directories: fixture.directories };
  const args = [...(hidden ? ["--import", "./test/fixtures/otel-api-absent.mjs"] : []), "test/fixtures/intake-child.ts", JSON.stringify(config)];
  const { stdout, stderr } = await run(node, args, { cwd: root, timeout: 30_000 });
  return { report: JSON.parse(stdout.trim()) as Record<string, unknown>, stderr };
}

describe("without @opentelemetry/api", () => {
  it("an intake and a tracked run work, with no warning on stderr", async () => {
    const { report, stderr } = await intakeInChild(true);
    // The hook works: the API does not resolve in the child.
    expect(report).toEqual({ api: "ERR_MODULE_NOT_FOUND", id: expect.stringMatching(/^[0-9a-f]{16}$/), created: true, detected: "detected", status: 3 });
    expect(stderr).toBe("");
  });

  it("and with it but no SDK registered, the same", async () => {
    const { report, stderr } = await intakeInChild(false);
    expect(report).toEqual({ api: "resolves", id: expect.stringMatching(/^[0-9a-f]{16}$/), created: true, detected: "detected", status: 3 });
    expect(stderr).toBe("");
  });
});
