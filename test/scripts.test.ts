// The npm scripts on a Node that cannot run them: a clear sentence on what to do, exit 1.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import packageJson from "../package.json" with { type: "json" };

const run = promisify(execFile);
const check = resolve(import.meta.dirname, "../scripts/check-node.cjs");

describe("scripts/check-node.cjs", () => {
  it("stops a script on Node 20 (as after `npm ci --ignore-scripts`) and says what to do", async () => {
    const error = (await run(process.execPath, ["-e", `Object.defineProperty(process.versions, "node", { value: "20.20.2" }); require(${JSON.stringify(check)})`]).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(error.code).toBe(1);
    expect(error.stderr).toContain("needs Node.js 22.18 or newer; this is Node.js 20.20.2.");
    expect(error.stderr).toContain("run `npm ci` without --ignore-scripts");
  });

  it("lets the pinned Node through, and guards every script that runs TypeScript", async () => {
    await run(process.execPath, [check]);
    const scripts = packageJson.scripts as Record<string, string>;
    for (const [name, command] of Object.entries(scripts)) {
      if (/node (examples|bench)\/.*\.ts|vitest run$/.test(command)) expect(command, name).toMatch(/^node scripts\/check-node\.cjs && /);
    }
  });

  it("execs the node of every long-running script, so that a signal to npm reaches it", () => {
    const scripts = packageJson.scripts as Record<string, string>;
    for (const name of ["example:express", "example:worker", "dev-annotations", "demo", "demo:cluster"]) {
      expect(scripts[name], name).toMatch(/^node scripts\/check-node\.cjs && exec node \S+\.ts\b/);
    }
  });
});
