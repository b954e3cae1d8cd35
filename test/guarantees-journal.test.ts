// The lifecycle's guarantee 4 (issue 9's numbering; docs/guarantees.md): the journal is correct
// by construction. Two recoveries at once settle a dead run once, a dead run's entry never sets
// Error over a live run, and a journal that fails on cleanup or on adding an entry never
// replaces or hides the outcome.
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { samplePng } from "../examples/sample-media.ts";
import { createFileJournal, httpErrorFor, intakeMedia, type JournalHandle, type MediaJournal, recoverInterrupted, trackMediaProcessing } from "../src/index.ts";
import { isStatus, useGuaranteesFixture } from "./helpers/guarantees.ts";

const { fixture, client, journalFolder, entriesLeft, settle } = useGuaranteesFixture();

describe("4. the journal is correct by construction", () => {
  it("two recoveries at once settle a dead run once", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    fixture.fake.records.get(media.id)!.mediaStatus = 2;
    // A run entry left by a process that is gone: another journal's owner, made dead by name.
    const folder = journalFolder();
    const dead = (await readdir(folder)).find((name) => name.endsWith(".alive"))!.replace(/\+\d+\.alive$/, "+1");
    await writeFile(join(folder, `${media.id}.run.0123456789ab.${dead}.json`), JSON.stringify({ kind: "run", id: media.id, state: "active", at: Date.now() }));
    const reports = await Promise.all([
      recoverInterrupted({ client: client(), directories: fixture.directories, journal: createFileJournal(folder) }),
      recoverInterrupted({ client: client(), directories: fixture.directories, journal: createFileJournal(folder) }),
    ]);
    expect(reports.flatMap((r) => r.markedError)).toEqual([media.id]);
    expect(fixture.fake.log.filter(isStatus(6))).toHaveLength(1);
    expect(await entriesLeft()).toEqual([]);
  });

  it("a dead run's entry never sets Error while a live run of the same ID is in progress", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const folder = journalFolder();
    const dead = (await readdir(folder)).find((name) => name.endsWith(".alive"))!.replace(/\+\d+\.alive$/, "+1");
    await writeFile(join(folder, `${media.id}.run.0123456789ab.${dead}.json`), JSON.stringify({ kind: "run", id: media.id, state: "active", at: 1 }));
    let release!: () => void;
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    const detect = trackMediaProcessing(
      () =>
        new Promise<string>((resolve) => {
          running();
          release = () => resolve("done");
        }),
      { client: client(), directories: fixture.directories },
    );
    const result = detect(media);
    await started;
    const report = await settle();
    expect(report.markedError).toEqual([]);
    expect(report.live).toBeGreaterThan(0);
    expect(fixture.fake.log.filter(isStatus(6))).toEqual([]);
    release();
    expect(await result).toBe("done");
    // The dead entry is settled once the live run has ended: the record is AIProcessed, not touched.
    expect(await settle()).toMatchObject({ alreadyConsistent: [media.id] });
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
    expect(await entriesLeft()).toEqual([]);
  });

  it("a journal failure on cleanup never replaces the outcome", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const files = createFileJournal(journalFolder());
    const failing: MediaJournal = {
      ...files,
      async add(entry) {
        const handle = await files.add(entry);
        return { key: handle.key, entry: handle.entry, update: (changes) => handle.update(changes), remove: () => Promise.reject(new Error("EIO: journal disk failed")) } satisfies JournalHandle;
      },
    };
    expect(await trackMediaProcessing(() => "result", { client: client(), journal: failing })(media)).toBe("result");
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(3);
  });

  it("a run whose journal entry cannot be written does not start, and its answer says the media are kept with their record", async () => {
    const media = await intakeMedia(samplePng(), { originalName: "a.png", token: fixture.token, client: client(), directories: fixture.directories });
    const files = createFileJournal(journalFolder());
    const failing: MediaJournal = { ...files, add: () => Promise.reject(new Error("EIO: journal disk failed")) };
    const detector = vi.fn(() => "result");
    const error = await trackMediaProcessing(detector, { client: client(), journal: failing })(media).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "JournalUnavailableError", code: "JOURNAL_UNAVAILABLE", keptMediaId: media.id });
    expect(detector).not.toHaveBeenCalled();
    expect(fixture.fake.records.get(media.id)?.mediaStatus).toBe(1);
    const answer = httpErrorFor(error);
    expect(answer).toMatchObject({ status: 503, code: "JOURNAL_UNAVAILABLE", mediaId: media.id, headers: { "retry-after": "5" } });
    expect(answer.message).toContain(`The media ${media.id} are stored with their record`);
    expect(answer.message).not.toContain("nothing was kept");
  });
});
