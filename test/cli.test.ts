import { spawn } from "node:child_process";
import { open, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import packageJson from "../package.json" with { type: "json" };
import { runCli } from "../src/cli/main.ts";
import { mod251 } from "./helpers/content.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const cliEntry = resolve(import.meta.dirname, "../src/cli/index.ts");

async function cli(argv: string[], stdin: Readable = Readable.from([])) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on("data", (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on("data", (chunk: Buffer) => err.push(chunk.toString()));
  const status = await runCli(argv, { stdin, stdout, stderr });
  return { status, stdout: out.join(""), stderr: err.join("") };
}

/** Runs the real command (Node, as installed) with its standard input from `stdin`. */
function spawnCli(argv: string[], stdin: "pipe" | number, input?: Uint8Array) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, [cliEntry, ...argv], { stdio: [stdin, "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", fail);
    child.on("close", (status) => done({ status, stdout, stderr }));
    if (input) child.stdin?.end(input);
  });
}

let dir: string;
let a: string;
let b: string;
beforeEach(async () => {
  dir = await makeTempDir();
  a = join(dir, "clip.mp4");
  b = join(dir, "фото 📷.png");
  await writeFile(a, mod251(1048583));
  await writeFile(b, mod251(3072));
});

describe("media-intake id", () => {
  it("prints '<id>  <path>' per file, like sha256sum", async () => {
    const result = await cli(["id", a, b]);
    expect(result).toEqual({ status: 0, stdout: `6a9b7ce7844aa871  ${a}\nf9062671e8bfb6e1  ${b}\n`, stderr: "" });
  });

  it("prints the virtual form with --virtual and JSON lines with --json", async () => {
    expect((await cli(["id", "--virtual", a])).stdout).toBe(`V6a9b7ce7844aa871  ${a}\n`);
    const lines = (await cli(["id", "--json", a, b])).stdout.trim().split("\n").map((line) => JSON.parse(line) as unknown);
    expect(lines).toEqual([
      { id: "6a9b7ce7844aa871", path: a },
      { id: "f9062671e8bfb6e1", path: b },
    ]);
  });

  it("exits 1 naming a file it cannot read, and still prints the others", async () => {
    const missing = join(dir, "missing.jpg");
    const result = await cli(["id", a, missing, b]);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe(`6a9b7ce7844aa871  ${a}\nf9062671e8bfb6e1  ${b}\n`);
    expect(result.stderr).toBe(`media-intake: Reading ${missing}: no such file (ENOENT)\n`);
  });

  it("exits 1 for a directory", async () => {
    const result = await cli(["id", dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`media-intake: Reading ${dir}: is a directory, not a file\n`);
  });

  it("exits 2 on usage errors", async () => {
    expect((await cli(["id"])).status).toBe(2);
    expect((await cli(["id", "--nope", a])).stderr).toMatch(/Unknown option '--nope'/);
    expect((await cli(["frobnicate"])).status).toBe(2);
  });

  it("prints help and the version", async () => {
    const help = await cli(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: media-intake <command>/);
    expect(await cli(["--version"])).toEqual({ status: 0, stdout: `${packageJson.version}\n`, stderr: "" });
  });

  it("reads standard input from a pipe with -", async () => {
    const result = await spawnCli(["id", "-"], "pipe", mod251(1048583));
    expect(result).toEqual({ status: 0, stdout: "6a9b7ce7844aa871  -\n", stderr: "" });
  });

  it("reads standard input redirected from a file with -", async () => {
    const handle = await open(a, "r");
    try {
      const result = await spawnCli(["id", "--json", "-"], handle.fd);
      expect(result).toEqual({ status: 0, stdout: '{"id":"6a9b7ce7844aa871","path":"-"}\n', stderr: "" });
    } finally {
      await handle.close();
    }
  });
});

describe("the CLI in a shell's hands", () => {
  it("refuses a FIFO at once instead of waiting for a writer", async () => {
    const { execFileSync } = await import("node:child_process");
    const fifo = join(dir, "pipe.fifo");
    execFileSync("mkfifo", [fifo]);
    const result = await cli(["id", fifo]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("is not a regular file");
  });

  it("stops quietly when its reader goes away (| head -1)", async () => {
    const { execFile } = await import("node:child_process");
    const many = Array.from({ length: 3000 }, () => a).join(" ");
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((done, fail) =>
      execFile("bash", ["-c", `"${process.execPath}" "${cliEntry}" id ${many} | head -1`], (error, out, err) => (error ? fail(error) : done({ stdout: out, stderr: err }))),
    );
    expect(stdout.trim().split("\n")).toHaveLength(1);
    expect(stderr).toBe("");
  });

  it("removes its spool file when interrupted while reading a pipe", async () => {
    const { readdir } = await import("node:fs/promises");
    const spoolRoot = await makeTempDir("media-intake-cli-tmp-");
    const child = spawn(process.execPath, [cliEntry, "id", "-"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, TMPDIR: spoolRoot } });
    child.stdin.write(Buffer.alloc(256 * 1024, 1));
    const { vi } = await import("vitest");
    await vi.waitFor(async () => expect((await readdir(spoolRoot, { recursive: true })).some((name) => name.endsWith("stdin"))).toBe(true));
    const exited = new Promise<NodeJS.Signals | null>((resolveExit) => child.once("exit", (_code, signal) => resolveExit(signal)));
    child.kill("SIGINT");
    expect(await exited).toBe("SIGINT");
    expect(await readdir(spoolRoot)).toEqual([]);
  });
});

describe("media-intake dev-annotations that cannot start", () => {
  /** `node src/cli/index.ts …` or `npm run dev-annotations -- …`, to its end. */
  function run(via: "cli" | "npm", args: string[]) {
    const [command, argv] = via === "cli" ? [process.execPath, [cliEntry, "dev-annotations", ...args]] : ["npm", ["run", "dev-annotations", "--", ...args]];
    return new Promise<{ status: number | null; stderr: string }>((done, fail) => {
      const child = spawn(command as string, argv as string[], { cwd: resolve(import.meta.dirname, ".."), stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", fail);
      child.on("close", (status) => done({ status, stderr }));
    });
  }

  it.each(["cli", "npm"] as const)("via %s: a port in use, and a database it cannot open, are one line each, no stack, exit 1", async (via) => {
    const { createServer } = await import("node:net");
    const taken = createServer().listen(0, "127.0.0.1");
    await new Promise((resolveListen) => taken.once("listening", resolveListen));
    try {
      const port = (taken.address() as { port: number }).port;
      expect(await run(via, ["--port", String(port), "--db", join(dir, "a.db")])).toEqual({
        status: 1,
        stderr: `media-intake dev-annotations: cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE); choose another --port.\n`,
      });
    } finally {
      taken.close();
    }
    const db = join(a, "under-a-file.db");
    const cannotOpen = await run(via, ["--port", "0", "--db", db]);
    expect(cannotOpen.status).toBe(1);
    expect(cannotOpen.stderr).toMatch(new RegExp(`^media-intake dev-annotations: cannot open the database --db ${db.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: [^\\n]+\\.\\n$`));
  });
});
