import { readdir, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { createAnnotationsClient, createFileJournal, MediaStatus, recoverInterrupted } from "../src/index.ts";
import { isOwnerAlive, processOwnerKey } from "../src/utils/process-identity.ts";
import { startChild } from "./helpers/child.ts";
import { startFaultFixture } from "./helpers/fault-fixture.ts";
import { describeJournalConformance } from "./helpers/journal-conformance.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

describeJournalConformance("file", async () => {
  const location = join(await makeTempDir(), "journal");
  return { journal: createFileJournal(location), another: () => createFileJournal(location), child: { engine: "file", location } };
});

const childScript = resolve(import.meta.dirname, "fixtures/journal-child.ts");

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

  it("removes a dead owner's temp files and, once its entries are claimed, its heartbeat", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location);
    const entry = { kind: "run", id: "00000000000000e1", state: "active", at: Date.now() } as const;
    const owner = startChild(childScript, { engine: "file", location, mode: "own", entries: [entry] });
    const key = (await owner.line("OWNER")).slice("OWNER ".length);
    await owner.line("ADDED");
    await writeFile(join(location, `.tmp.0123456789ab.${key}`), "{");
    await owner.kill();
    expect(await journal.sweep()).toBe(1);
    expect((await readdir(location)).sort()).toEqual([`${key}.alive`, expect.stringMatching(new RegExp(`^00000000000000e1\\.run\\.[0-9a-f]{12}\\.${key.replace(/\+/g, "\\+")}\\.json$`))].sort());
    const [record] = await journal.list();
    const handle = await journal.claim(record!);
    await handle?.remove();
    await journal.sweep();
    expect((await readdir(location)).filter((name) => name.includes(key))).toEqual([]);
  });

  it("judges an owner in another pid namespace by its heartbeat", async () => {
    const location = join(await makeTempDir(), "journal");
    const journal = createFileJournal(location, { heartbeatMs: 100 });
    const foreign = processOwnerKey.replace(/^[^+]+/, "container2");
    await journal.add({ kind: "run", id: "00000000000000f1", state: "active", at: Date.now() });
    const [mine] = await journal.list();
    const name = mine!.key.slice(location.length + 1).replace(processOwnerKey, foreign);
    await writeFile(join(location, name), JSON.stringify({ kind: "run", id: "00000000000000f1", state: "active", at: Date.now() }));
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
