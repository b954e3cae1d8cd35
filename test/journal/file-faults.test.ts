// The file journal under file-system faults injected into its calls (EMFILE, EIO, EROFS, a
// failed sync), on real files in a temp folder: only ENOENT means gone, a failed sync retires
// its log, and a journal that cannot be written fails at once with a typed error and heals.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createAnnotationsClient,
  createFileJournal,
  fileJournalFor,
  httpErrorFor,
  intakeMedia,
  JOURNAL_DIRECTORY_NAME,
  type JournalEntry,
  type JournalHandle,
  JournalUnavailableError,
  MediaStatus,
  recoverInterrupted,
} from "../../src/index.ts";
import { processOwnerKey } from "../../src/utils/process-identity.ts";
import { samplePng } from "../../examples/sample-media.ts";
import { startFaultFixture } from "../helpers/fixture.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";

/**
 * Faults armed by a test: the next `times` calls named `call` whose path (and detail: open's
 * flags, a write's text) `match` fail with `code` (or, without one, go through), after `hold`
 * when given. `onHit` is told when such a call starts, `after` when it went through.
 */
const faults = vi.hoisted(() => {
  interface Rule {
    call: string;
    match: (path: string, detail: string) => boolean;
    code?: string;
    times: number;
    hold?: Promise<void>;
    onHit?: () => void;
    after?: () => void;
    /** A write that takes only this many of the bytes asked (a short write). */
    takes?: (asked: number) => number;
  }
  const rules: Rule[] = [];
  const fdPaths = new Map<number, string>();
  const take = (call: string, path: string, detail = ""): Rule | undefined => {
    const rule = rules.find((r) => r.call === call && r.times > 0 && r.match(path, detail));
    if (rule) {
      rule.times -= 1;
      rule.onHit?.();
    }
    return rule;
  };
  const errorOf = (rule: Rule, call: string, path: string) => Object.assign(new Error(`${rule.code}: injected, ${call} '${path}'`), { code: rule.code, syscall: call, path });
  /** A callback-style call: the rule's failure (after its hold), else the real call. */
  const viaCallback = (call: string, path: string, detail: string, real: (done: (...result: unknown[]) => void) => void, done: (...result: unknown[]) => void) => {
    const rule = take(call, path, detail);
    if (!rule) return real(done);
    void (rule.hold ?? Promise.resolve()).then(() => {
      if (rule.code) return done(errorOf(rule, call, path));
      real((...result) => {
        rule.after?.();
        done(...result);
      });
    });
  };
  /** A promise-returning call: the rule's failure, else the real call. */
  const viaPromise = async <T>(call: string, path: string, real: () => Promise<T>): Promise<T> => {
    const rule = take(call, path);
    if (rule?.code) throw errorOf(rule, call, path);
    return real();
  };
  return { local: true, rules, fdPaths, take, errorOf, viaCallback, viaPromise };
});

vi.mock("../../src/utils/local-fs.ts", () => ({ isLocalFileSystem: () => faults.local }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  type Done = (...result: unknown[]) => void;
  const pathOf = (fd: number) => faults.fdPaths.get(fd) ?? "";
  return {
    ...fs,
    openSync(path: string, flags: string, ...rest: never[]) {
      const rule = faults.take("open", String(path), String(flags));
      if (rule?.code) throw faults.errorOf(rule, "open", String(path));
      const fd = fs.openSync(path, flags, ...rest);
      faults.fdPaths.set(fd, String(path));
      return fd;
    },
    open(path: string, flags: string, ...rest: unknown[]) {
      const done = rest.pop() as Done;
      faults.viaCallback("open", String(path), String(flags), (then) => (fs.open as (...args: unknown[]) => void)(path, flags, ...rest, then), (error, fd) => {
        if (!error) faults.fdPaths.set(fd as number, String(path));
        done(error, fd);
      });
    },
    writeSync(fd: number, buffer: Buffer, ...rest: never[]) {
      const rule = faults.take("write", pathOf(fd), Buffer.isBuffer(buffer) ? buffer.toString("utf8", rest[0] ?? 0) : "");
      if (rule?.code) throw faults.errorOf(rule, "write", pathOf(fd));
      if (rule?.takes) {
        const offset = (rest[0] as number | undefined) ?? 0;
        const asked = (rest[1] as number | undefined) ?? buffer.length - offset;
        const taken = rule.takes(asked);
        return taken === 0 ? 0 : fs.writeSync(fd, buffer, offset, taken);
      }
      return (fs.writeSync as (...args: unknown[]) => number)(fd, buffer, ...rest);
    },
    write(fd: number, buffer: Buffer, ...rest: unknown[]) {
      const done = rest.pop() as Done;
      const text = Buffer.isBuffer(buffer) ? buffer.toString("utf8", typeof rest[0] === "number" ? rest[0] : 0) : "";
      faults.viaCallback("write", pathOf(fd), text, (then) => (fs.write as (...args: unknown[]) => void)(fd, buffer, ...rest, then), done);
    },
    fdatasync(fd: number, done: Done) {
      faults.viaCallback("fdatasync", pathOf(fd), "", (then) => fs.fdatasync(fd, then as never), done);
    },
    fsync(fd: number, done: Done) {
      faults.viaCallback("fsync", pathOf(fd), "", (then) => fs.fsync(fd, then as never), done);
    },
  };
});

vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...fs,
    readFile: (path: string, options?: never) => faults.viaPromise("readFile", String(path), () => fs.readFile(path, options)),
    writeFile: (path: string, data: string, options?: never) => faults.viaPromise("writeFile", String(path), () => fs.writeFile(path, data, options)),
    mkdir: (path: string, options?: never) => faults.viaPromise("mkdir", String(path), () => fs.mkdir(path, options)),
    stat: (path: string, options?: never) => faults.viaPromise("stat", String(path), () => fs.stat(path, options)),
  };
});

afterEach(() => {
  faults.rules.length = 0;
  faults.local = true;
});

const run = (id: string): JournalEntry => ({ kind: "run", id, state: "active", at: Date.now() });
const logOf = (handle: JournalHandle) => handle.key.slice(0, handle.key.lastIndexOf("#"));
/** A deferred: a promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}
/** Every callback and microtask queued so far has run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a log holds on disk, by entry ID (the last line of each key wins). */
async function onDisk(path: string): Promise<Map<string, JournalEntry>> {
  const byKey = new Map<string, JournalEntry | undefined>();
  for (const line of (await readFile(path, "utf8")).split("\n").filter(Boolean)) {
    const { k, e } = JSON.parse(line) as { k: string; e?: JournalEntry };
    byKey.set(k, e);
  }
  return new Map([...byKey.values()].filter((e) => e !== undefined).map((e) => [e.id, e]));
}

describe("the file journal under file-system faults", () => {
  it("keeps a dead owner's log that a sweep cannot read (EMFILE), reports it, and a later pass settles it", async () => {
    const { root, directories, fake, service, token } = await startFaultFixture(() => undefined);
    try {
      const id = "00000000000007a1";
      fake.records.set(id, { id, name: "a.mp4", path: join(root, "videos", `${id}.mp4`), mediaType: 1, mediaStatus: MediaStatus.AIProcessing, userId: "user-9" });
      const location = join(root, "videos", JOURNAL_DIRECTORY_NAME);
      const dead = processOwnerKey.replace(/\+\d+$/, "+1");
      const log = join(location, `abcdef012345.${dead}.log`);
      await mkdir(location, { recursive: true });
      await writeFile(log, `\n${JSON.stringify({ k: "000000000001", e: run(id) })}`);
      faults.rules.push({ call: "readFile", match: (path) => path === log, code: "EMFILE", times: 1 });

      const error = await fileJournalFor(directories).sweep().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalUnavailableError);
      expect((error as Error).cause).toMatchObject({ code: "EMFILE" });
      expect([...(await onDisk(log)).keys()]).toEqual([id]);

      const client = createAnnotationsClient({ baseUrl: service.url, token, retry: false });
      const report = await recoverInterrupted({ client, directories });
      expect(report.markedError).toEqual([id]);
      expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.Error);
      expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toEqual([]);
    } finally {
      await service.close();
    }
  });

  it("continues a short write of a log line, and fails an add whose write takes no byte instead of spinning", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const first = await journal.add(run("00000000000007d1"));
    const log = logOf(first);
    faults.rules.push({ call: "write", match: (path) => path === log, takes: (asked) => Math.max(1, asked >> 1), times: 3 });
    const second = await journal.add(run("00000000000007d2"));
    expect(logOf(second)).toBe(log);
    expect([...(await onDisk(log)).keys()].sort()).toEqual(["00000000000007d1", "00000000000007d2"]);

    faults.rules.push({ call: "write", match: (path) => path === log, takes: () => 0, times: 1 });
    const stuck = await journal.add(run("00000000000007d3")).catch((e: unknown) => e);
    expect(stuck).toBeInstanceOf(JournalUnavailableError);
    expect((stuck as Error).message).toMatch(/took no byte/);
    // The journal carries on (on a new log), and every entry it answered is readable.
    await journal.add(run("00000000000007d4"));
    expect((await journal.list()).map((r) => r.entry.id).sort()).toEqual(["00000000000007d1", "00000000000007d2", "00000000000007d4"]);
  });

  it("never takes an owner whose heartbeat cannot be read (EIO) for dead", async () => {
    const location = join(await makeTempDir(), "journal");
    const foreign = processOwnerKey.replace(/^[^+]+/, "container4");
    const log = join(location, `abcdef012345.${foreign}.log`);
    await mkdir(location, { recursive: true });
    await writeFile(join(location, `${foreign}.alive`), JSON.stringify({ heartbeatMs: 10_000 }));
    await writeFile(log, `\n${JSON.stringify({ k: "000000000001", e: run("00000000000007b1") })}`);
    faults.rules.push({ call: "stat", match: (path) => path.endsWith(`${foreign}.alive`), code: "EIO", times: 2 });
    const journal = createFileJournal(location);
    await expect(journal.list()).rejects.toBeInstanceOf(JournalUnavailableError);
    await expect(journal.sweep()).rejects.toThrow(/EIO/);
    expect([...(await onDisk(log)).keys()]).toEqual(["00000000000007b1"]);
    expect(await journal.list()).toEqual([expect.objectContaining({ owner: foreign, ownerAlive: true })]);
  });

  it("fails the changes a failed sync covered, even those a later sync covers too, and puts new entries in a new log", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location, { durability: "power" });
    const kept = await journal.add(run("00000000000007c1"));
    const first = logOf(kept);
    const held = signal();
    const syncing = signal();
    faults.rules.push({ call: "fdatasync", match: (path) => path === first, code: "EIO", times: 1, hold: held.promise, onHit: syncing.fire });
    const failed = journal.add(run("00000000000007c2")).catch((e: unknown) => e);
    await syncing.promise;
    // Written while the failing sync runs: the sync after it succeeds, yet proves nothing of it.
    const during = journal.add(run("00000000000007c3")).catch((e: unknown) => e);
    await turn();
    held.fire();
    expect(await failed).toBeInstanceOf(JournalUnavailableError);
    expect(await during).toBeInstanceOf(JournalUnavailableError);
    expect(httpErrorFor(await failed)).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" } });

    const next = await journal.add(run("00000000000007c4"));
    expect(logOf(next)).not.toBe(first);
    // The retired log still serves its own entry: a line written after the failure and synced.
    await kept.update({ status: MediaStatus.AIProcessed });
    expect(await onDisk(first)).toEqual(new Map([["00000000000007c1", expect.objectContaining({ status: MediaStatus.AIProcessed })]]));
    expect([...(await onDisk(logOf(next))).keys()]).toEqual(["00000000000007c4"]);
    await Promise.all([kept.remove(), next.remove()]);
    expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toEqual([]);
  });

  it("tries a log's failed folder sync again: later entries of the same log succeed", async () => {
    // Thread-pool calls, so that the failed entry's removal can be held while a new entry joins the log.
    faults.local = false;
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location, { durability: "power" });
    const folderSync = signal();
    const written = signal();
    const removing = signal();
    const release = signal();
    faults.rules.push(
      { call: "fsync", match: (path) => path === location, code: "EIO", times: 1, hold: folderSync.promise },
      { call: "write", match: (_, text) => text.includes("00000000000007d1"), times: 1, after: written.fire },
      { call: "write", match: (_, text) => /^\n\{"k":"[0-9a-f]{12}"\}$/.test(text), times: 1, hold: release.promise, onHit: removing.fire },
    );
    const first = journal.add(run("00000000000007d1")).catch((e: unknown) => e);
    await written.promise;
    await turn();
    folderSync.fire();
    // The first entry fails on its log's name and is being removed; another joins the same log.
    await removing.promise;
    const second = journal.add(run("00000000000007d2"));
    await turn();
    release.fire();
    expect(await first).toBeInstanceOf(JournalUnavailableError);
    const handle = await second;
    const more = await Promise.all(["00000000000007d3", "00000000000007d4"].map((id) => journal.add(run(id))));
    expect([...(await onDisk(logOf(handle))).keys()].sort()).toEqual(["00000000000007d2", ...more.filter((h) => logOf(h) === logOf(handle)).map((h) => h.entry.id)].sort());
    await Promise.all([handle, ...more].map((h) => h.remove()));
  });

  it.each(["EROFS", "EACCES"])("fails an add at once while the folder cannot be written (%s), with a 503, and heals without a restart", async (code) => {
    const location = join(await makeTempDir(), "journal");
    const readOnly = [
      { call: "mkdir", match: (path: string) => path === location, code, times: Infinity },
      { call: "writeFile", match: (path: string) => path.startsWith(location), code, times: Infinity },
      { call: "open", match: (path: string, flags: string) => path.startsWith(location) && flags !== "r", code, times: Infinity },
    ];
    const journal = createFileJournal(location);
    // Read-only before the first entry (no heartbeat yet), then again once one log came and went.
    for (const round of [1, 2]) {
      faults.rules.push(...readOnly.map((rule) => ({ ...rule })));
      const error = await journal.add(run(`00000000000007e${round}`)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalUnavailableError);
      expect((error as Error).cause).toMatchObject({ code });
      expect(httpErrorFor(error)).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" } });
      faults.rules.length = 0;
      const handle = await journal.add(run(`00000000000007e${round}`));
      expect([...(await onDisk(logOf(handle))).keys()]).toEqual([`00000000000007e${round}`]);
      await handle.remove();
    }
    await journal.close();
  });

  it("refuses an upload while the journal folder is read-only (503, nothing kept), and takes it once writable", async () => {
    const { root, directories, fake, service, token } = await startFaultFixture(() => undefined);
    try {
      const location = join(root, "videos", JOURNAL_DIRECTORY_NAME);
      faults.rules.push({ call: "mkdir", match: (path) => path === location, code: "EROFS", times: Infinity });
      const client = createAnnotationsClient({ baseUrl: service.url, token, retry: false });
      const error = await intakeMedia(samplePng(), { originalName: "a.png", token, client, directories }).catch((e: unknown) => e);
      expect(httpErrorFor(error)).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" } });
      expect(await filesUnder(root)).toEqual([]);
      expect(fake.records.size).toBe(0);
      faults.rules.length = 0;
      const media = await intakeMedia(samplePng(), { originalName: "a.png", token, client, directories });
      expect(fake.records.get(media.id)).toBeDefined();
    } finally {
      await service.close();
    }
  });

  it("fails an add while the disk is full (ENOSPC), with a 503, and puts the next entry in a new log", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const kept = await journal.add(run("00000000000007f1"));
    faults.rules.push({ call: "write", match: (path) => path === logOf(kept), code: "ENOSPC", times: 1 });
    const error = await journal.add(run("00000000000007f2")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalUnavailableError);
    expect(httpErrorFor(error)).toMatchObject({ status: 503, headers: { "retry-after": "5" } });
    const next = await journal.add(run("00000000000007f2"));
    expect(logOf(next)).not.toBe(logOf(kept));
    await Promise.all([kept.remove(), next.remove()]);
  });
});
