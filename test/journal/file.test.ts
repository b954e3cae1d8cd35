import { mkdir, readdir, readFile, rm, rmdir, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { createAnnotationsClient, createFileJournal, httpErrorFor, JournalUnavailableError, MediaStatus, recoverInterrupted } from "../../src/index.ts";
import { claimsHeldIn } from "../../src/journal/file/log.ts";
import { isOwnerAlive, processOwnerKey } from "../../src/utils/process-identity.ts";
import { startChild } from "../helpers/child.ts";
import { startFaultFixture } from "../helpers/fixture.ts";
import { describeJournalConformance, fileEngineUnderTest } from "../helpers/journal-conformance.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

describeJournalConformance("file", fileEngineUnderTest);

const childScript = resolve(import.meta.dirname, "../fixtures/journal-child.ts");

describe("the file journal", () => {
  it("judges an owner on this host by pid and start time, at once", async () => {
    expect(isOwnerAlive(processOwnerKey)).toBe(true);
    const location = join(await makeTempDir(), "journal");
    const owner = startChild(childScript, { engine: "file", location, mode: "own", entries: [] });
    const key = (await owner.line("OWNER")).slice("OWNER ".length);
    expect(isOwnerAlive(key)).toBe(true);
    await owner.kill();
    expect(isOwnerAlive(key)).toBe(false);
    // The same pid with another start time (a reused pid) is another process.
    expect(isOwnerAlive(processOwnerKey.replace(/\+\d+$/, "+1"))).toBe(false);
    // Another host or container cannot be judged from here.
    expect(isOwnerAlive(processOwnerKey.replace(/^[^+]+/, "elsewhere"))).toBeUndefined();
  });

  it("removes a dead owner's temp files and, once its entries are claimed, its log and heartbeat", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const entry = { kind: "run", id: "00000000000000e1", state: "active", at: Date.now() } as const;
    const owner = startChild(childScript, { engine: "file", location, mode: "own", entries: [entry] });
    const key = (await owner.line("OWNER")).slice("OWNER ".length);
    await owner.line("ADDED");
    await writeFile(join(location, `.tmp.0123456789ab.${key}`), "{");
    await owner.kill();
    expect(await journal.sweep()).toBe(1);
    expect((await readdir(location)).sort()).toEqual([`${key}.alive`, expect.stringMatching(new RegExp(`^[0-9a-f]{12}\\.${key.replace(/\+/g, "\\+")}\\.log$`))].sort());
    const [record] = await journal.list();
    const handle = await journal.claim(record!);
    expect(handle?.entry).toEqual({ ...entry, state: "settle" });
    await handle?.remove();
    await journal.sweep();
    expect((await readdir(location)).filter((name) => name.includes(key))).toEqual([]);
    // The claimed log went with its last entry.
    expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toEqual([]);
  });

  it("judges an owner in another pid namespace by its heartbeat", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location, { heartbeatMs: 100 });
    const foreign = processOwnerKey.replace(/^[^+]+/, "container2");
    await journal.add({ kind: "run", id: "00000000000000f1", state: "active", at: Date.now() });
    // A log of a process in another container, as it writes one.
    const line = JSON.stringify({ k: "0123456789ab", e: { kind: "run", id: "00000000000000f1", state: "active", at: Date.now() } });
    await writeFile(join(location, `abcdef012345.${foreign}.log`), `\n${line}`);
    // No heartbeat at all: dead.
    expect((await journal.list()).find((r) => r.owner === foreign)?.ownerAlive).toBe(false);
    await writeFile(join(location, `${foreign}.alive`), "");
    expect((await journal.list()).find((r) => r.owner === foreign)?.ownerAlive).toBe(true);
    // Three beats missed: dead.
    const old = new Date(Date.now() - 400);
    await utimes(join(location, `${foreign}.alive`), old, old);
    expect((await journal.list()).find((r) => r.owner === foreign)?.ownerAlive).toBe(false);
    await journal.close();
  });

  it("keeps one log for concurrent entries, and no file once they are gone", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const handles = await Promise.all(Array.from({ length: 50 }, (_, i) => journal.add({ kind: "run", id: `00000000000003${i.toString(16).padStart(2, "0")}`, state: "active", at: Date.now() })));
    expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toHaveLength(1);
    await Promise.all(handles.map((handle, i) => handle.update({ status: i % 2 === 0 ? 3 : 6 })));
    // The file says what this process holds: the last line of each key wins.
    const [log] = (await readdir(location)).filter((name) => name.endsWith(".log"));
    const onDisk = new Map<string, { status?: number }>();
    for (const line of (await readFile(join(location, log!), "utf8")).split("\n").filter(Boolean)) {
      const { k, e } = JSON.parse(line) as { k: string; e: { status?: number } };
      onDisk.set(k, e);
    }
    expect([...onDisk.values()].map((e) => e.status).sort()).toEqual(handles.map((_, i) => (i % 2 === 0 ? 3 : 6)).sort());
    await Promise.all(handles.map((handle) => handle.remove()));
    expect((await readdir(location)).filter((name) => !name.endsWith(".alive"))).toEqual([]);
  });

  it("a dead owner's log cut short mid-line by a crash keeps every whole entry, and takes the claimer's lines after it", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const dead = processOwnerKey.replace(/\+\d+$/, "+1");
    const entry = { kind: "run", id: "00000000000004a1", state: "active", at: 5 };
    await mkdir(location, { recursive: true });
    const whole = JSON.stringify({ k: "000000000001", e: entry });
    const cut = JSON.stringify({ k: "000000000002", e: { ...entry, id: "00000000000004a2" } }).slice(0, 30);
    await writeFile(join(location, `abcdef012345.${dead}.log`), `\n${whole}\n${cut}`);
    const [record, ...more] = await journal.list();
    expect(more).toEqual([]);
    expect(record).toMatchObject({ owner: dead, ownerAlive: false, mine: false, entry });
    const handle = await journal.claim(record!);
    expect(handle?.entry).toEqual({ ...entry, state: "settle" });
    // Another process reads the claimed log as this process's, in state settle.
    const [again] = await journal.list();
    expect(again).toMatchObject({ mine: true, entry: { ...entry, state: "settle" } });
    await handle?.update({ status: 3 });
    await handle?.remove();
    expect(await journal.list()).toEqual([]);
    expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toEqual([]);
  });

  it("lists, claims and settles the entries 0.1.0 left (one JSON file each)", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const dead = processOwnerKey.replace(/\+\d+$/, "+1");
    const entry = { kind: "run", id: "00000000000005a1", state: "active", at: 7 };
    await mkdir(location, { recursive: true });
    await writeFile(join(location, `00000000000005a1.run.0123456789ab.${dead}.json`), JSON.stringify(entry));
    const [record] = await journal.list("00000000000005a1");
    expect(record).toMatchObject({ owner: dead, ownerAlive: false, entry });
    const [first, second] = await Promise.all([journal.claim(record!), createFileJournal(location).claim(record!)]);
    const handle = first ?? second;
    expect([first, second].filter(Boolean)).toHaveLength(1);
    expect(handle?.entry).toMatchObject({ state: "settle" });
    await handle?.update({ status: 3 });
    expect((await journal.list())[0]).toMatchObject({ mine: true, entry: { state: "settle", status: 3 } });
    await handle?.remove();
    expect(await journal.list()).toEqual([]);
  });

  it("judges an owner in another pid namespace by the period its heartbeat records, not the judge's", async () => {
    const location = join(await makeTempDir(), "journal");
    // An owner that beats once a minute writes its heartbeat; another container sees it under its own key.
    const owner = createFileJournal(location, { heartbeatMs: 60_000 });
    const handle = await owner.add({ kind: "run", id: "00000000000008a1", state: "active", at: Date.now() });
    const foreign = processOwnerKey.replace(/^[^+]+/, "container3");
    const heartbeat = join(location, `${foreign}.alive`);
    await writeFile(heartbeat, await readFile(join(location, `${processOwnerKey}.alive`)));
    const line = JSON.stringify({ k: "0123456789ab", e: { kind: "run", id: "00000000000008a2", state: "active", at: Date.now() } });
    await writeFile(join(location, `abcdef012345.${foreign}.log`), `\n${line}`);
    const judge = createFileJournal(location, { heartbeatMs: 100 });
    const ownerAlive = async () => (await judge.list()).find((record) => record.owner === foreign)?.ownerAlive;
    const beatAgo = (ms: number) => utimes(heartbeat, new Date(Date.now() - ms), new Date(Date.now() - ms));
    // Beaten 5 s ago: fifty of the judge's periods, not one of the owner's.
    await beatAgo(5_000);
    expect(await ownerAlive()).toBe(true);
    await beatAgo(200_000);
    expect(await ownerAlive()).toBe(false);
    // A heartbeat of 0.2 records no period: judged by the judge's own, as then.
    await writeFile(heartbeat, "");
    await beatAgo(200);
    expect(await ownerAlive()).toBe(true);
    await beatAgo(5_000);
    expect(await ownerAlive()).toBe(false);
    await handle.remove();
    await owner.close();
  });

  it("releases what it holds of a claimed log once the log is settled", async () => {
    const { root, directories, fake, service, token } = await startFaultFixture(() => undefined);
    try {
      const location = join(root, "videos", ".media-intake-journal");
      const dead = processOwnerKey.replace(/\+\d+$/, "+1");
      await mkdir(location, { recursive: true });
      const ids: string[] = [];
      // Dead owners' logs of several media each: each claimed for one ID, the rest settled as this process's.
      for (let log = 0; log < 3; log++) {
        const lines = [0, 1, 2].map((i) => {
          const id = `00000000000008${log}${i}`;
          ids.push(id);
          fake.records.set(id, { id, name: "a.mp4", path: join(root, "videos", `${id}.mp4`), mediaType: 1, mediaStatus: MediaStatus.AIProcessing, userId: "user-9" });
          return `\n${JSON.stringify({ k: `00000000000${i}`, e: { kind: "run", id, state: "active", at: 1 } })}`;
        });
        await writeFile(join(location, `abcdef01234${log}.${dead}.log`), lines.join(""));
      }
      const client = createAnnotationsClient({ baseUrl: service.url, token, retry: false });
      const report = await recoverInterrupted({ client, directories });
      expect(report.markedError.sort()).toEqual(ids.sort());
      expect((await readdir(location)).filter((name) => name.endsWith(".log"))).toEqual([]);
      expect(claimsHeldIn(location)).toBe(0);
    } finally {
      await service.close();
    }
  });

  // Under either durability: a log removed under the process is told by its link count, synced or not.
  it.each(["process", "power"] as const)("makes its folder again when it is removed under the running process, and journals on (durability %s)", async (durability) => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location, { durability });
    const run = (id: string) => ({ kind: "run", id, state: "active", at: Date.now() }) as const;
    const onDisk = async () => {
      const logs = (await readdir(location)).filter((name) => name.endsWith(".log"));
      const lines = (await Promise.all(logs.map((name) => readFile(join(location, name), "utf8")))).join("\n").split("\n").filter(Boolean);
      return lines.map((line) => (JSON.parse(line) as { e?: { id: string } }).e?.id).filter(Boolean);
    };
    // With an entry in the open log, then with none.
    const kept = await journal.add(run("00000000000008b1"));
    await rm(location, { recursive: true, force: true });
    const added = await journal.add(run("00000000000008b2"));
    expect(await onDisk()).toEqual(["00000000000008b2"]);
    expect(JSON.parse(await readFile(join(location, `${processOwnerKey}.alive`), "utf8"))).toEqual({ heartbeatMs: 10_000 });
    // The entry whose log went with the folder is on no disk: changing it fails.
    await expect(kept.update({ status: 3 })).rejects.toBeInstanceOf(JournalUnavailableError);
    await Promise.all([kept.remove(), added.remove()]);
    await rm(location, { recursive: true, force: true });
    const again = await journal.add(run("00000000000008b3"));
    expect(await onDisk()).toEqual(["00000000000008b3"]);
    await again.remove();
    await journal.close();
  });

  it("heals from a failed first heartbeat: the add fails with a 503, the next one beats and journals", async () => {
    const location = join(await makeTempDir(), "journal");
    const heartbeat = join(location, `${processOwnerKey}.alive`);
    // A folder where the heartbeat goes: writing it fails (EISDIR).
    await mkdir(heartbeat, { recursive: true });
    const journal = createFileJournal(location, { heartbeatMs: 500 });
    const error = await journal.add({ kind: "run", id: "00000000000008c1", state: "active", at: Date.now() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalUnavailableError);
    expect(httpErrorFor(error)).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", headers: { "retry-after": "5" } });
    await rmdir(heartbeat);
    const handle = await journal.add({ kind: "run", id: "00000000000008c1", state: "active", at: Date.now() });
    expect(JSON.parse(await readFile(heartbeat, "utf8"))).toEqual({ heartbeatMs: 500 });
    expect(await journal.list()).toEqual([expect.objectContaining({ key: handle.key, mine: true })]);
    await handle.remove();
    await journal.close();
  });

  it("settles a dead owner's runs by the newest start, whatever order they are claimed in", async () => {
    const { root, directories, fake, service, token } = await startFaultFixture(() => undefined);
    try {
      const id = "00000000000000e7";
      fake.records.set(id, { id, name: "a.mp4", path: join(root, "videos", `${id}.mp4`), mediaType: 1, mediaStatus: MediaStatus.AIProcessing, userId: "user-9" });
      // A run cut off long ago, and the newer run's AIProcessed handed over but not yet landed.
      const entries = [
        { kind: "run", id, state: "active", at: 1_000 },
        { kind: "run", id, state: "settle", status: MediaStatus.AIProcessed, at: 2_000 },
      ];
      const owner = startChild(childScript, { engine: "file", location: join(root, "videos", ".media-intake-journal"), mode: "own", entries });
      await owner.line("ADDED");
      await owner.kill();
      const client = createAnnotationsClient({ baseUrl: service.url, token, retry: false });
      const report = await recoverInterrupted({ client, directories });
      expect(report.statusesWritten).toEqual([id]);
      expect(fake.records.get(id)?.mediaStatus).toBe(MediaStatus.AIProcessed);
    } finally {
      await service.close();
    }
  });
});

describe("isLocalFileSystem", () => {
  it.runIf(process.platform === "linux")("tells tmpfs as local, procfs and a missing directory as not", async () => {
    const { isLocalFileSystem } = await import("../../src/utils/local-fs.ts");
    const { existsSync } = await import("node:fs");
    if (existsSync("/dev/shm")) expect(isLocalFileSystem("/dev/shm")).toBe(true);
    expect(isLocalFileSystem("/proc")).toBe(false);
    expect(isLocalFileSystem(join(await makeTempDir(), "missing"))).toBe(false);
  });
});
