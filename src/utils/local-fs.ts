// Which directories take small file system calls on the event loop: those on a local file
// system, where creating, linking, renaming, removing or appending a few bytes to a file is a
// few microseconds (the page cache and the file system's own journal), less than a round trip
// through libuv's thread pool. On a network or FUSE file system each call may wait on the wire:
// there every call goes through the thread pool, as `fs.promises` does.
import { statfsSync } from "node:fs";

/** `statfs` magic numbers of local Linux file systems. */
const LOCAL_LINUX = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0x794c7630, // overlayfs (containers)
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
  0xca451a4e, // bcachefs
  0x3153464a, // jfs
]);
/** `statfs` types of local macOS file systems: APFS and HFS+. */
const LOCAL_DARWIN = new Set([0x1a, 0x11]);

const known = new Map<string, boolean>();

/**
 * Whether `directory` is on a local file system (cached per directory). `false` when it cannot
 * be told (a missing directory, another platform): then every call goes through the pool.
 */
export function isLocalFileSystem(directory: string): boolean {
  let local = known.get(directory);
  if (local === undefined) {
    const types = process.platform === "linux" ? LOCAL_LINUX : process.platform === "darwin" ? LOCAL_DARWIN : undefined;
    try {
      local = types?.has(statfsSync(directory).type) ?? false;
    } catch {
      return false;
    }
    known.set(directory, local);
  }
  return local;
}
