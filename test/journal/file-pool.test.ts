// The file journal on a file system it does not know as local (NFS, SMB, FUSE): every file call
// goes through the thread pool, in order. The same conformance suite, and a log's writes in order.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it, vi } from "vitest";
import { createFileJournal } from "../../src/index.ts";
import { describeJournalConformance, fileEngineUnderTest } from "../helpers/journal-conformance.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";

vi.mock("../../src/utils/local-fs.ts", () => ({ isLocalFileSystem: () => false }));

describeJournalConformance("file, thread-pool calls", fileEngineUnderTest);

it("lands a log's lines in the order they were appended, whatever the pool's threads do", async () => {
  const location = join(await makeTempDir(), "journal");
  const journal = createFileJournal(location);
  const handles = await Promise.all(Array.from({ length: 40 }, (_, i) => journal.add({ kind: "run", id: `00000000000006${i.toString(16).padStart(2, "0")}`, state: "active", at: i })));
  // Each entry's updates one after another, all entries at once: the last line of each key wins.
  await Promise.all(handles.map(async (handle) => {
    await handle.update({ state: "settle" });
    await handle.update({ status: 3 });
    await handle.update({ status: 6 });
  }));
  const [log] = (await readdir(location)).filter((name) => name.endsWith(".log"));
  const last = new Map<string, { status?: number; state?: string }>();
  for (const line of (await readFile(join(location, log!), "utf8")).split("\n").filter(Boolean)) {
    const { k, e } = JSON.parse(line) as { k: string; e: { status?: number; state?: string } };
    last.set(k, e);
  }
  expect(last.size).toBe(40);
  for (const entry of last.values()) expect(entry).toMatchObject({ state: "settle", status: 6 });
  await Promise.all(handles.map((handle) => handle.remove()));
  expect((await readdir(location)).filter((name) => !name.endsWith(".alive"))).toEqual([]);
});
