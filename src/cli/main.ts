import { createWriteStream, fstatSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import packageJson from "../../package.json" with { type: "json" };
import { computeMediaId, computeMediaIdSync, initMediaIdHasher } from "../media-id/index.ts";

/** Where the CLI reads and writes; the real process streams by default, buffers in tests. */
export interface CliIo {
  stdin: Readable & { fd?: number };
  stdout: Writable;
  stderr: Writable;
}

const usage = `Usage: media-intake <command> [options]

Commands:
  id <file...>     Print the media ID of each file, like sha256sum: "<id>  <file>".
                   "-" reads standard input.
    --virtual      Print the virtual form ("V" + 16 hex digits).
    --json         Print one JSON object per line: {"id":"…","path":"…"}.

  dev-annotations  Run the dev annotations service (SQLite) until interrupted.
    --port <n>     Port, 0 for a free one (default 0).
    --host <h>     Interface (default 127.0.0.1).
    --db <file>    SQLite database file (default ./annotations.db).
    --jwt-secret   HS256 secret tokens must be signed with (default: $JWT_SECRET;
                   without one, tokens are decoded, not verified).

Options:
  -h, --help       Show this help.
  -v, --version    Show the version.

Exit status: 0 when every file was read, 1 when one could not be (the others still print),
2 on a usage error.`;

/**
 * Runs the `media-intake` command line with `argv` (without node and the script) and returns
 * the exit status. It never calls `process.exit`, so it can be tested in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    io.stdout.write(`${usage}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === "-v" || command === "--version") {
    io.stdout.write(`${packageJson.version}\n`);
    return 0;
  }
  if (command === "id") return runId(rest, io);
  if (command === "dev-annotations") return runDevAnnotations(rest, io);
  io.stderr.write(`media-intake: unknown command "${command}"\n\n${usage}\n`);
  return 2;
}

async function runId(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        virtual: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    io.stderr.write(`media-intake id: ${(error as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(`${usage}\n`);
    return 0;
  }
  if (parsed.positionals.length === 0) {
    io.stderr.write("media-intake id: expected at least one file (or - for standard input)\n");
    return 2;
  }
  await initMediaIdHasher();
  let status = 0;
  for (const path of parsed.positionals) {
    try {
      const id = path === "-" ? await idOfStdin(io.stdin) : await computeMediaId(path);
      const shown = parsed.values.virtual ? `V${id}` : id;
      io.stdout.write(parsed.values.json ? `${JSON.stringify({ id: shown, path })}\n` : `${shown}  ${path}\n`);
    } catch (error) {
      status = 1;
      const message = oneLine(error);
      const subject = path === "-" ? "standard input" : path;
      io.stderr.write(`media-intake: ${message.includes(subject) ? message : `${subject}: ${message}`}\n`);
    }
  }
  return status;
}

async function runDevAnnotations(argv: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string", default: "0" },
        host: { type: "string", default: "127.0.0.1" },
        db: { type: "string", default: "./annotations.db" },
        "jwt-secret": { type: "string" },
      },
    }));
  } catch (error) {
    io.stderr.write(`media-intake dev-annotations: ${(error as Error).message}\n`);
    return 2;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.stderr.write(`media-intake dev-annotations: --port must be 0 to 65535, got ${values.port}\n`);
    return 2;
  }
  // Loaded only here: the other commands never touch node:sqlite.
  const { startDevAnnotationsServer } = await import("../dev-server/index.ts");
  const secret = values["jwt-secret"] ?? process.env.JWT_SECRET;
  let server: Awaited<ReturnType<typeof startDevAnnotationsServer>>;
  try {
    server = await startDevAnnotationsServer({ port, host: values.host, dbPath: values.db, ...(secret ? { jwtSecret: secret } : {}) });
  } catch (error) {
    // One line, no stack: what to change is an option.
    io.stderr.write(`media-intake dev-annotations: ${startFailure(error as NodeJS.ErrnoException, values.host, port, values.db)}\n`);
    return 1;
  }
  io.stdout.write(`dev annotations server listening on ${server.url} (database ${values.db}${secret ? "" : "; tokens decoded, not verified"})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return 0;
}

/** Why the dev annotations server did not start, naming the option to change. */
function startFailure(error: NodeJS.ErrnoException, host: string, port: number, db: string): string {
  if (error?.syscall === "listen" || error?.syscall === "getaddrinfo") {
    const why = error.code === "EADDRINUSE" ? "the port is in use" : error.code === "EACCES" ? "permission denied" : error.code === "ENOTFOUND" ? "the host does not resolve" : oneLine(error);
    const option = error.code === "EADDRINUSE" || error.code === "EACCES" ? "--port" : error.code === "ENOTFOUND" || error.code === "EADDRNOTAVAIL" ? "--host" : "--port or --host";
    return `cannot listen on ${host}:${port}: ${why} (${error.code ?? "error"}); choose another ${option}.`;
  }
  return `cannot open the database --db ${db}: ${oneLine(error)}${error?.code && !oneLine(error).includes(error.code) ? ` (${error.code})` : ""}.`;
}

/**
 * Standard input redirected from a file is read in place (three positional reads); a pipe is
 * spooled to a temp file first, because the middle sample depends on the length.
 */
async function idOfStdin(stdin: Readable & { fd?: number }): Promise<string> {
  if (typeof stdin.fd === "number" && isRegularFile(stdin.fd)) {
    return computeMediaIdSync(stdin.fd);
  }
  const dir = await mkdtemp(join(tmpdir(), "media-intake-stdin-"));
  // Interrupted while spooling (Ctrl-C, a kill): the spool goes with the process.
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    cleanUp();
    process.kill(process.pid, signal);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const spooled = join(dir, "stdin");
    await pipeline(stdin, createWriteStream(spooled, { highWaterMark: 1 << 20 }));
    return await computeMediaId(spooled);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanUp();
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ");
}
