import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach } from "vitest";

const created: string[] = [];

// Registered when a test file imports this helper: every temp dir goes after each test.
afterEach(async () => {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh temp directory, removed after the current test. */
export async function makeTempDir(prefix = "media-intake-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/**
 * Every file under `root`, as sorted paths relative to it (`[]` when `root` is missing), less
 * the journal's heartbeat files (`<owner>.alive`): a live process keeps one while it runs.
 */
export async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile() && !entry.name.endsWith(".alive"))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}
