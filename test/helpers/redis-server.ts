// A real redis-server for the distributed suite: on a free loopback port, its files in a temp
// directory, persistence off unless asked, stopped after the test. No mock of Redis.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { afterEach } from "vitest";
import { makeTempDir } from "./temp-dir.ts";

const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }));
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts redis-server; `restart()` stops it and starts it again on the same port and directory. */
export async function startRedisServer() {
  const dir = await makeTempDir("media-intake-redis-");
  const port = await freePort();
  let child: ChildProcess;
  const launch = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--protected-mode", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.push(child);
    await new Promise<void>((resolve, reject) => {
      let output = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) resolve();
      });
      child.once("error", (error: NodeJS.ErrnoException) =>
        reject(error.code === "ENOENT" ? new Error("redis-server is not on PATH: install it (Debian: apt-get install redis-server; Homebrew: brew install redis).") : error),
      );
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
    });
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
      await launch();
    },
  };
}
