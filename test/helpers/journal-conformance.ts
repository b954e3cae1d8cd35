// One conformance suite for every journal engine (src/journal/: files, and Redis in `media-intake/journal/redis`):
// each engine's test file calls it with a factory, and the same cases run against it.
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { createFileJournal, type JournalEntry, type MediaJournal } from "../../src/index.ts";
import { processOwnerKey } from "../../src/utils/process-identity.ts";
import { startChild } from "./child.ts";
import { makeTempDir } from "./temp-dir.ts";

const childScript = resolve(import.meta.dirname, "../fixtures/journal-child.ts");

export interface JournalEngineUnderTest {
  /** A journal of this process on a fresh location. */
  journal: MediaJournal;
  /** Another journal instance on the same location (as a second recovery would have). */
  another: () => MediaJournal;
  /** What the child fixture needs to open the same location. */
  child: { engine: string; location: string };
  /** A journal of this process whose first heartbeat cannot be written until `heal()` (see the outage cases). */
  broken: () => Promise<BrokenJournal>;
}

const intake = (id: string, at = Date.now()): JournalEntry => ({
  kind: "intake",
  id,
  path: `/data/videos/${id}.mp4`,
  name: "clip.mp4",
  mediaType: 1,
  userId: "u1",
  state: "active",
  at,
});
const run = (id: string, at = Date.now()): JournalEntry => ({ kind: "run", id, state: "active", at });

export function describeJournalConformance(name: string, setup: () => Promise<JournalEngineUnderTest>): void {
  describe(`${name} journal conformance`, () => {
    it("lists an added entry as this process's, live, and not after its removal", async () => {
      const { journal } = await setup();
      const handle = await journal.add(intake("00000000000000a1"));
      expect(await journal.list()).toEqual([expect.objectContaining({ key: handle.key, mine: true, ownerAlive: true, entry: handle.entry })]);
      expect(await journal.list("00000000000000a1")).toHaveLength(1);
      expect(await journal.list("00000000000000b2")).toEqual([]);
      await handle.remove();
      await handle.remove();
      expect(await journal.list()).toEqual([]);
    });

    it("updates an entry in place, and an update never brings back a removed entry's siblings", async () => {
      const { journal } = await setup();
      const handle = await journal.add(run("00000000000000a2"));
      await handle.update({ state: "settle", status: 3 });
      const [listed] = await journal.list();
      expect(listed?.entry).toMatchObject({ kind: "run", id: "00000000000000a2", state: "settle", status: 3 });
      expect(handle.entry).toMatchObject({ state: "settle", status: 3 });
    });

    it("never brings back a removed entry, however adds, updates and removes interleave", async () => {
      const { journal } = await setup();
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const handle = await journal.add(run(`00000000000001${(i % 100).toString(16).padStart(2, "0")}`));
          await Promise.all([handle.update({ status: 3 }), i % 2 === 0 ? handle.remove() : Promise.resolve()]);
          await handle.remove();
        }),
      );
      expect(await journal.list()).toEqual([]);
    });

    it("an update after the removal fails, and brings nothing back", async () => {
      const { journal } = await setup();
      const handle = await journal.add(run("00000000000001ff"));
      const [updated, removed] = await Promise.allSettled([handle.update({ status: 3 }), handle.remove()]);
      expect(removed.status).toBe("fulfilled");
      expect(updated.status).toBe("fulfilled");
      await expect(handle.update({ status: 6 })).rejects.toThrow(/removed|no longer/);
      expect(await journal.list()).toEqual([]);
    });

    it("a live owner's entries are never claimed; a dead owner's are, by exactly one claimer", async () => {
      const { journal, another, child } = await setup();
      const owner = startChild(childScript, { ...child, mode: "own", entries: [intake("00000000000000c1"), run("00000000000000c1")] });
      await owner.line("ADDED");
      const live = await journal.list();
      expect(live).toHaveLength(2);
      expect(live.every((record) => record.ownerAlive && !record.mine)).toBe(true);
      expect(await Promise.all(live.map((record) => journal.claim(record)))).toEqual([undefined, undefined]);

      await owner.kill();
      // Dead at once on this host for the file engine; once its heartbeat lapses for Redis.
      await vi.waitFor(async () => expect((await journal.list()).every((record) => !record.ownerAlive)).toBe(true), { timeout: 10_000 });
      const dead = await journal.list();
      // Two claimers in this process and two in other processes race for the same entries.
      const second = another();
      const claimers = [startChild(childScript, { ...child, mode: "claim" }), startChild(childScript, { ...child, mode: "claim" })];
      const [mine, theirs, ...others] = await Promise.all([
        Promise.all(dead.map((record) => journal.claim(record))),
        Promise.all(dead.map((record) => second.claim(record))),
        ...claimers.map(async (claimer) => Number((await claimer.line("CLAIMED")).split(" ")[1])),
      ]);
      const won = mine.filter(Boolean).length + theirs.filter(Boolean).length + (others as number[]).reduce((a, b) => a + b, 0);
      expect(won).toBe(2);
      // What this process won is its own now, handed over for settling.
      for (const handle of [...mine, ...theirs].filter((h) => h !== undefined)) expect(handle.entry.state).toBe("settle");
    });

    it("sweeps what dead owners left, never what live ones hold", async () => {
      const { journal, child } = await setup();
      const live = startChild(childScript, { ...child, mode: "own", entries: [run("00000000000000d1")] });
      const dead = startChild(childScript, { ...child, mode: "own", entries: [] });
      await Promise.all([live.line("ADDED"), dead.line("ADDED")]);
      await dead.kill();
      await journal.sweep();
      expect(await journal.list()).toEqual([expect.objectContaining({ ownerAlive: true, entry: expect.objectContaining({ id: "00000000000000d1" }) })]);
      await live.kill();
    });
  });

  describeOutageConformance(name, setup);
}

// Outages (issue 18, item 9): a journal that could not be written, once it can again, works
// again without a restart. Each engine injects its own fault through `broken`.

/** A journal that cannot be written until `heal()`, which resolves once it can be. */
export interface BrokenJournal {
  journal: MediaJournal;
  heal: () => Promise<void>;
}

/** The file engine's fault: a folder where this process's heartbeat file goes. */
export async function fileJournalWithUnwritableHeartbeat(open: (location: string) => MediaJournal): Promise<BrokenJournal> {
  const location = join(await makeTempDir(), "journal");
  const heartbeat = join(location, `${processOwnerKey}.alive`);
  await mkdir(heartbeat, { recursive: true });
  return { journal: open(location), heal: () => rm(heartbeat, { recursive: true }) };
}

function describeOutageConformance(name: string, setup: () => Promise<JournalEngineUnderTest>): void {
  describe(`${name} journal conformance: outages`, () => {
    it("a failed first heartbeat heals: calls fail while the journal cannot be written, and work once it can", async () => {
      const { broken } = await setup();
      const { journal, heal } = await broken();
      await expect(journal.add(run("0000000000000e01"))).rejects.toThrow();
      // Still down: tried again, not a failure kept from the first call.
      await expect(journal.add(intake("0000000000000e02"))).rejects.toThrow();
      await heal();
      const handle = await journal.add(run("0000000000000e03"));
      expect(await journal.list()).toEqual([expect.objectContaining({ key: handle.key, mine: true, ownerAlive: true, entry: handle.entry })]);
      await handle.update({ state: "settle", status: 3 });
      await handle.remove();
      expect(await journal.list()).toEqual([]);
    });
  });
}

/** The file engine as the suite takes it: a fresh folder, a second instance on it, a child process's, and one whose heartbeat cannot be written. */
export async function fileEngineUnderTest(): Promise<JournalEngineUnderTest> {
  const location = join(await makeTempDir(), "journal");
  return {
    journal: createFileJournal(location),
    another: () => createFileJournal(location),
    child: { engine: "file", location },
    broken: () => fileJournalWithUnwritableHeartbeat((folder) => createFileJournal(folder)),
  };
}
