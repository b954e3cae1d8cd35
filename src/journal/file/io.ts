// The file journal's lower layer: its file calls (on the event loop on a local file system, in
// the thread pool elsewhere), the syncs that concurrent changes share, and unique names.
import { randomBytes } from "node:crypto";
import { close, closeSync, fstat, fstatSync, fsync, open, openSync, unlink, unlinkSync, write, writeSync } from "node:fs";
import { readdir } from "node:fs/promises";

/** 12 hex digits unique in this process (with the owner key in a name: unique on the host). */
const namePrefix = randomBytes(3).toString("hex");
let nameCounter = 0;
export function uniqueName(): string {
  nameCounter = (nameCounter + 1) % 0x1000000;
  return namePrefix + nameCounter.toString(16).padStart(6, "0");
}

/** A callback-style call as a promise. */
export function callback(run: (done: (error: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}

/** fsync of a file or folder by path (a folder's makes the names created and renamed in it durable). */
export async function syncPath(path: string): Promise<void> {
  const fd = openSync(path, "r");
  try {
    await callback((done) => fsync(fd, done));
  } finally {
    closeSync(fd);
  }
}

/** For `.catch`: a file that is gone is `undefined`; any other failure (EMFILE, EIO, ...) is thrown. */
export function ifGone(error: NodeJS.ErrnoException): undefined {
  if (error.code === "ENOENT") return undefined;
  throw error;
}

/** The names in a folder; none when the folder is gone. */
export async function listNames(folder: string): Promise<string[]> {
  return readdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [] as string[];
    throw error;
  });
}

/** Removes a file; one that is gone already is fine. */
export function removeIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/**
 * The log's file calls: system calls on the event loop on a local file system (see
 * utils/local-fs.ts), the thread pool's elsewhere. A create goes to the pool either way.
 */
export interface LogCalls {
  open(path: string, flags: "wx" | "a"): Promise<number>;
  write(fd: number, bytes: Buffer): Promise<void>;
  /** How many names the open file has: 0 once it was removed. */
  links(fd: number): Promise<number>;
  close(fd: number): Promise<void>;
  /** A file gone already is fine. */
  unlink(path: string): Promise<void>;
}
/** A write's count, or an error when the file system took no byte (a loop would spin for ever). */
function progress(count: number, at: number, length: number): number {
  if (count > 0) return count;
  throw Object.assign(new Error(`a journal write at byte ${at} of ${length} took no byte (the file system made no progress)`), { code: "EIO" });
}

/** Writes all of `bytes` at the file's position, continuing short writes. */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let written = 0; written < bytes.length; ) written += progress(writeSync(fd, bytes, written), written, bytes.length);
}

/** A create goes to the thread pool: on a disk it waits on the file system's journal. */
const openInPool = (path: string, flags: "wx" | "a") => new Promise<number>((resolve, reject) => open(path, flags, (error, fd) => (error ? reject(error) : resolve(fd))));

export const onEventLoop: LogCalls = {
  open: openInPool,
  async write(fd, bytes) {
    writeAllSync(fd, bytes);
  },
  links: async (fd) => fstatSync(fd).nlink,
  close: async (fd) => closeSync(fd),
  unlink: async (path) => removeIfThere(path),
};
export const inThreadPool: LogCalls = {
  open: openInPool,
  async write(fd, bytes) {
    for (let written = 0; written < bytes.length; ) {
      written += progress(await new Promise<number>((resolve, reject) => write(fd, bytes, written, (error, count) => (error ? reject(error) : resolve(count)))), written, bytes.length);
    }
  },
  links: (fd) => new Promise((resolve, reject) => fstat(fd, (error, stats) => (error ? reject(error) : resolve(stats.nlink)))),
  close: (fd) => callback((done) => close(fd, done)),
  unlink: (path) => callback((done) => unlink(path, (error) => done(error?.code === "ENOENT" ? null : error))),
};

/**
 * One sync shared by concurrent callers (a group commit): each waits for a sync that started
 * after its write, instead of one each. `idle` settles once none is running or queued.
 */
export function groupSync(run: () => Promise<void>): { (): Promise<void>; idle(): Promise<void> } {
  let syncing: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const sync = (): Promise<void> => {
    if (!syncing) {
      syncing = run().finally(() => (syncing = undefined));
      return syncing;
    }
    // The sync in flight may have started before this write: the next one covers it.
    queued ??= syncing.catch(() => {}).then(() => {
      queued = undefined;
      return sync();
    });
    return queued;
  };
  return Object.assign(sync, { idle: () => Promise.allSettled([syncing, queued]).then(() => undefined) });
}

/**
 * Runs operations one at a time, in order, per entry: an update still being written must not
 * land after the removal and bring the entry back.
 */
export function oneAtATime(): <T>(operation: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (operation) => {
    const next = last.then(operation, operation);
    last = next.catch(() => {});
    return next;
  };
}
