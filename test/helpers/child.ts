import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { afterEach } from "vitest";

const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

/** A Node child process running `script` with its JSON config; its printed lines are awaitable by prefix. */
export function startChild(script: string, config: unknown, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
  children.push(child);
  const seen: string[] = [];
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    seen.push(line);
    for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    child,
    stderr: () => stderr,
    /** The first line that matches, printed already or to come. */
    match: (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = (line: string) => line.match(pattern);
        const found = seen.map(check).find(Boolean);
        if (found) return resolve(found);
        createInterface({ input: child.stdout }).on("line", (line) => {
          const matched = check(line);
          if (matched) resolve(matched);
        });
        child.once("close", (code) => reject(new Error(`child exited (${code}) before a line matched ${pattern}: ${stderr}`)));
      }),
    /** Every line printed so far. */
    lines: () => [...seen],
    /** The first line starting with `prefix`, printed already or to come; rejects if the child exits first. */
    line: (prefix: string) =>
      new Promise<string>((resolve, reject) => {
        const found = seen.find((line) => line.startsWith(prefix));
        if (found) return resolve(found);
        waiters.push({ prefix, resolve });
        child.once("close", (code) => reject(new Error(`child exited (${code}) before "${prefix}": ${stderr}`)));
      }),
    /** SIGKILL, and wait until it is gone (reaped). */
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}
