import { execFileSync } from "node:child_process";
import { mkdtemp, rmdir, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A small real tmpfs to fill up: a full disk, for real. */
export interface SmallTmpfs {
  /** Where it is mounted. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Free bytes on it now. */
  free(): Promise<number>;
  /** Writes a filler file at `filler` leaving exactly `left` bytes free (a multiple of the page size). */
  fillUp(filler: string, left: number): Promise<void>;
  unmount(): Promise<void>;
}

/**
 * Mounts a tmpfs of `size` bytes in a fresh temp directory. Mounting needs root
 * (CAP_SYS_ADMIN) on Linux, as CI runs. Where it is impossible this throws with the reason,
 * so that the tests that need it FAIL, never skip: a full disk is a guarantee the README
 * states, and a suite that silently skips its proof proves nothing.
 */
export async function mountSmallTmpfs(size: number): Promise<SmallTmpfs> {
  const path = await mkdtemp(join(tmpdir(), "media-intake-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", path], { stdio: "pipe" });
  } catch (error) {
    await rmdir(path);
    const reason = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
    throw new Error(`These tests need a small real tmpfs to fill up, and mounting one failed: ${reason}. Run them as root on Linux (CI does).`);
  }
  const free = async () => {
    const stats = await statfs(path);
    return stats.bavail * stats.bsize;
  };
  return {
    path,
    size,
    free,
    async fillUp(filler, left) {
      await writeFile(filler, Buffer.alloc((await free()) - left, 1));
      const now = await free();
      if (now !== left) throw new Error(`Filling the tmpfs up left ${now} bytes free, not ${left}.`);
    },
    async unmount() {
      execFileSync("umount", [path]);
      await rmdir(path);
    },
  };
}
