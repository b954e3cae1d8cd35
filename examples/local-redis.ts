// A throwaway redis-server from PATH, for `npm run demo:cluster` and the distributed test suite:
// on a free loopback port, its files in a directory of the caller's, never the machine's own Redis.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

/** What to tell a user who has no redis-server on PATH. */
export const missingRedisMessage = "redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS with Homebrew: brew install redis).";

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The running redis-server (a new one after `restart`). */
  readonly child: ChildProcess;
  /** SIGKILLs it and starts it again on the same port and directory (its append-only file kept). */
  restart(): Promise<void>;
  /** SIGKILLs it and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again after `stop()`, on the same port and directory; does nothing while it runs. */
  start(): Promise<void>;
}

/**
 * Starts redis-server on a free port with its files in `dir`, and resolves once it accepts
 * connections. By default the append-only file is synced on every command (`appendfsync always`),
 * so a restart finds everything that was acknowledged; `appendfsync: "everysec"` is Redis's own
 * default, for benchmarks. `onStart` gets each process it spawns (to kill it on the way out).
 */
export async function startLocalRedis(
  dir: string,
  options: { appendfsync?: "always" | "everysec"; onStart?: (child: ChildProcess) => void } = {},
): Promise<LocalRedis> {
  const { appendfsync = "always", onStart = () => {} } = options;
  const port = await freePort();
  let child!: ChildProcess;
  const launch = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", appendfsync, "--protected-mode", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    onStart(child);
    await new Promise<void>((resolve, reject) => {
      let output = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) resolve();
      });
      child.once("error", (error: NodeJS.ErrnoException) => reject(error.code === "ENOENT" ? new Error(missingRedisMessage) : error));
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
    });
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get child() {
      return child;
    },
    async restart() {
      await stop();
      await launch();
    },
    stop,
    async start() {
      if (child.exitCode === null && child.signalCode === null) return;
      await launch();
    },
  };
}
