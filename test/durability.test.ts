// Durability, counted: with `durability: "power"` every step of the intake path has what it
// answers for on disk before it answers (the store's file before its name and its folder after,
// the file journal's entry, a tus upload's metadata, each PATCH's bytes, the finish marker);
// with "process" (the default) nothing is synced at all. Every fsync, fdatasync and flushed
// write is seen through the file system calls the library makes (node:fs and node:fs/promises,
// mocked around the real ones), in one timeline with the annotations requests and HTTP answers.
import { mkdir, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { basename, dirname, join } from "node:path";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { computeMediaId, type Durability, intakeMedia, storeCompleteFile, storeMedia, trackMediaProcessing } from "../src/index.ts";
import { createTusIntake, type TusIntake } from "../src/tus/index.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { startServer } from "./helpers/http-server.ts";

/** A sync that completed (the path its descriptor was opened with; whether `finalPath` existed then), a request the annotations service received, an answer our server began. */
type Seen = { kind: "fsync" | "fdatasync" | "flush"; path: string; placed: boolean } | { kind: "request" | "answer"; what: string };

const timeline = vi.hoisted(() => ({ seen: [] as Seen[], finalPath: "", descriptors: new Map<number, string>(), exists: (_path: string): boolean => false }));

/** Records a completed sync of `path` (a bare descriptor's: the path it was opened with). */
function synced(kind: "fsync" | "fdatasync" | "flush", path: string): void {
  timeline.seen.push({ kind, path, placed: timeline.finalPath !== "" && timeline.exists(timeline.finalPath) });
}

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...actual,
    // A FileHandle's syncs: the store's handles off a local file system, storeCompleteFile's, a tus PATCH's, syncDirectory's.
    open: vi.fn(async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      return new Proxy(handle, {
        get(target, property) {
          if (property === "sync" || property === "datasync") {
            return async () => {
              await target[property]();
              synced(property === "sync" ? "fsync" : "fdatasync", String(args[0]));
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    }),
    // The tus finish marker: `flush` is an fsync of the file before writeFile resolves.
    writeFile: vi.fn(async (...args: Parameters<typeof actual.writeFile>) => {
      await actual.writeFile(...args);
      const options = args[2];
      if (typeof options === "object" && options?.flush === true) synced("flush", String(args[0]));
    }),
  };
});

// Bare descriptors: the store's temp file and the journal's logs (opened in the thread pool),
// the journal's folder (opened on the event loop), synced with the callback calls.
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  type Done = (error: NodeJS.ErrnoException | null) => void;
  timeline.exists = actual.existsSync;
  // A folder's sync here (the journal's) ends a few turns of the event loop late, as on a busy
  // disk: what does not wait for it (a new log's name) is seen going ahead of it.
  const later = (turns: number, run: () => void): void => void (turns === 0 ? run() : setImmediate(() => later(turns - 1, run)));
  const after = (kind: "fsync" | "fdatasync", fd: number, callback: Done) => (error: NodeJS.ErrnoException | null) => {
    const path = timeline.descriptors.get(fd) ?? `fd ${fd}`;
    later(!error && actual.statSync(path, { throwIfNoEntry: false })?.isDirectory() ? 5 : 0, () => {
      if (!error) synced(kind, path);
      callback(error);
    });
  };
  return {
    ...actual,
    open: vi.fn((path: string, ...rest: unknown[]) => {
      const callback = rest.pop() as (error: NodeJS.ErrnoException | null, fd: number) => void;
      (actual.open as (...args: unknown[]) => void)(path, ...rest, (error: NodeJS.ErrnoException | null, fd: number) => {
        if (!error) timeline.descriptors.set(fd, String(path));
        callback(error, fd);
      });
    }),
    openSync: vi.fn((...args: Parameters<typeof actual.openSync>) => {
      const fd = actual.openSync(...args);
      timeline.descriptors.set(fd, String(args[0]));
      return fd;
    }),
    fsync: vi.fn((fd: number, callback: Done) => actual.fsync(fd, after("fsync", fd, callback))),
    fdatasync: vi.fn((fd: number, callback: Done) => actual.fdatasync(fd, after("fdatasync", fd, callback))),
  };
});

const fixture = useFaultFixture({ sub: "alice" });

beforeEach(() => {
  timeline.seen.length = 0;
  timeline.finalPath = "";
  // Every request the annotations service receives, in the same timeline.
  fixture.intercept = (request) => {
    timeline.seen.push({ kind: "request", what: `${request.method} ${request.path}${request.method === "PUT" ? ` ${request.body}` : ""}` });
    return undefined;
  };
});

const isSync = (seen: Seen): seen is Extract<Seen, { path: string }> => seen.kind !== "request" && seen.kind !== "answer";
const syncs = () => timeline.seen.filter(isSync);

/** The timeline as labels: each sync by what it made durable (`<placed>` once the final file exists), each request and answer as it went. */
function labels(): string[] {
  const { videosDir, imagesDir } = fixture.directories;
  const journalDir = join(videosDir, ".media-intake-journal");
  const named = (path: string): string => {
    if (path === imagesDir || path === videosDir) return `${basename(path)} folder`;
    if (path === journalDir) return "journal folder";
    if (dirname(path) === journalDir && path.endsWith(".log")) return "journal log";
    if (/\/\.[0-9a-f]{16}\..+\.partial$/.test(path)) return "temp file";
    if (/\/[0-9a-f]{32}\.media\.[0-9a-f]+\.tmp$/.test(path)) return "finish marker";
    if (/\/\.media-intake-uploads$/.test(path)) return "uploads folder";
    if (/\/\.media-intake-uploads\/[0-9a-f]{32}$/.test(path)) return "upload";
    if (/\/\.media-intake-uploads\/[0-9a-f]{32}\.json$/.test(path)) return "upload info";
    return path;
  };
  return timeline.seen.map((seen) => (isSync(seen) ? `${seen.kind} ${named(seen.path)}${seen.placed ? " <placed>" : ""}` : `${seen.kind} ${seen.what}`));
}

/** `list` with the runs of labels that may come in any order (concurrent syncs) sorted. */
const sortedWithin = (list: string[], ...runs: Array<[from: number, to: number]>) => {
  const copy = [...list];
  for (const [from, to] of runs) copy.splice(from, to - from, ...copy.slice(from, to).sort());
  return copy;
};

describe("storeCompleteFile", () => {
  it.each([{ durability: "power" }, { fsync: true }] as const)("with %o syncs the file's data before it is linked into place, then its folder", async (setting) => {
    const { directories } = fixture;
    const png = samplePng(40, 30, 5);
    const upload = join(directories.videosDir, ".uploads", "0123456789abcdef0123456789abcdef");
    await mkdir(dirname(upload), { recursive: true });
    await writeFile(upload, png);
    timeline.finalPath = join(directories.imagesDir, `${await computeMediaId(png)}.png`);

    const stored = await storeCompleteFile(upload, { originalName: "photo.png", directories, ...setting });

    expect(stored).toMatchObject({ path: timeline.finalPath, created: true, size: png.byteLength });
    expect(syncs()).toEqual([
      { kind: "fsync", path: upload, placed: false },
      { kind: "fsync", path: directories.imagesDir, placed: true },
    ]);
  });

  it.each([{}, { durability: "process" }] as const)("with %o syncs nothing", async (setting) => {
    const upload = join(fixture.root, "fedcba9876543210fedcba9876543210");
    await writeFile(upload, samplePng(20, 20, 6));
    const stored = await storeCompleteFile(upload, { originalName: "photo.png", directories: fixture.directories, ...setting });
    expect(stored.created).toBe(true);
    expect(syncs()).toEqual([]);
  });
});

describe("storeMedia", () => {
  // A first store makes the folder (its temp file a FileHandle); later ones find it (a bare descriptor).
  it.each([
    ["durability power", "missing", { durability: "power" }],
    ["durability power", "there already", { durability: "power" }],
    ["fsync (deprecated)", "there already", { fsync: true }],
  ] as const)("with %s, its folder %s, syncs the temp file's data before it is linked into place, then its folder", async (_setting, folder, setting) => {
    const { directories } = fixture;
    if (folder === "there already") await mkdir(directories.imagesDir, { recursive: true });
    const png = samplePng(40, 30, 7);
    timeline.finalPath = join(directories.imagesDir, `${await computeMediaId(png)}.png`);

    await storeMedia(png, { originalName: "photo.png", directories, ...setting });

    expect(labels()).toEqual(["fsync temp file", "fsync images folder <placed>"]);
    expect(syncs()[1]!.path).toBe(directories.imagesDir);
  });

  it("with durability process (the default) syncs nothing", async () => {
    await mkdir(fixture.directories.imagesDir, { recursive: true });
    await storeMedia(samplePng(40, 30, 8), { originalName: "a.png", directories: fixture.directories });
    await storeMedia(samplePng(40, 30, 9), { originalName: "b.png", directories: fixture.directories, durability: "process" });
    expect(syncs()).toEqual([]);
  });
});

describe("intakeMedia and trackMediaProcessing", () => {
  const intake = async (setting?: Durability | { fsync: true }) => {
    const png = samplePng(48, 32, 10);
    timeline.finalPath = join(fixture.directories.imagesDir, `${await computeMediaId(png)}.png`);
    const durability = typeof setting === "string" ? { durability: setting } : setting;
    return intakeMedia(png, { originalName: "photo.png", token: fixture.token, client: fixture.client(), directories: fixture.directories, ...durability });
  };

  it.each(["power", { fsync: true }] as const)("with %o: the file synced before its link, the journal entry (its log and the log's name) before the file takes its name, the folder after, all before the record's create", async (setting) => {
    const media = await intake(setting);
    expect(media).toMatchObject({ created: true, fileCreated: true, path: timeline.finalPath });
    expect(sortedWithin(labels(), [1, 3])).toEqual([
      "fsync temp file",
      "fdatasync journal log",
      "fsync journal folder",
      "fsync images folder <placed>",
      "request POST /api/media",
    ]);
  });

  it("with durability process (the default): the record created, nothing synced", async () => {
    expect(await intake()).toMatchObject({ created: true, fileCreated: true });
    expect(labels()).toEqual(["request POST /api/media"]);
  });

  const detect = (durability?: Durability) =>
    trackMediaProcessing(async () => "boxes", { client: fixture.client(), token: fixture.token, directories: fixture.directories, ...(durability ? { durability } : {}) });

  /** A run's timeline under power: its entry (in a new log, its name made durable) before AIProcessing, its outcome before AIProcessed. */
  const syncedRun = (id: string) => [
    "fdatasync journal log",
    "fsync journal folder",
    `request PUT /api/media/${id}/status {"MediaStatus":2}`,
    "fdatasync journal log",
    `request PUT /api/media/${id}/status {"MediaStatus":3}`,
  ];

  it("a run with durability power: its entry synced before AIProcessing is sent, its outcome before AIProcessed is", async () => {
    const media = await intake();
    timeline.seen.length = 0;
    timeline.finalPath = "";
    expect(await detect("power")(media)).toBe("boxes");
    expect(sortedWithin(labels(), [0, 2])).toEqual(syncedRun(media.id));
  });

  it("a run with durability process (the default): nothing synced", async () => {
    const media = await intake();
    timeline.seen.length = 0;
    expect(await detect()(media)).toBe("boxes");
    expect(labels()).toEqual([`request PUT /api/media/${media.id}/status {"MediaStatus":2}`, `request PUT /api/media/${media.id}/status {"MediaStatus":3}`]);
  });

  it("the journals of one folder share their logs: a run asking for process is synced once an intake there asked for power", async () => {
    const media = await intake("power");
    timeline.seen.length = 0;
    timeline.finalPath = "";
    await detect()(media);
    // A new log (the intake's went with its last entry), its name made durable too.
    expect(sortedWithin(labels(), [0, 2])).toEqual(syncedRun(media.id));
  });
});

describe("a tus upload through createTusIntake, over HTTP with tus-js-client", () => {
  const MiB = 2 ** 20;
  let tus: TusIntake | undefined;
  let closeServer: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await closeServer?.();
    await tus?.close();
    tus = undefined;
    closeServer = undefined;
  });

  /** Records the start of each answer (its status line, before a byte of it is sent). */
  function recordAnswer(req: IncomingMessage, res: ServerResponse): void {
    const { writeHead } = res;
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse["writeHead"]>) {
      timeline.seen.push({ kind: "answer", what: `${req.method} ${args[0]}` });
      return writeHead.apply(this, args);
    } as typeof res.writeHead;
  }

  /** Uploads 2.5 MiB of MP4 in 1 MiB PATCHes: three of them, the last one finishing the upload. */
  async function upload(setting: { durability?: Durability; fsync?: true } = {}, deferred = false) {
    tus = createTusIntake({ directories: fixture.directories, client: fixture.client(), sweepIntervalMs: 0, ...setting });
    const intake = tus;
    const started = await startServer((req, res) => {
      recordAnswer(req, res);
      void intake.handle(req, res);
    });
    closeServer = started.close;
    const mp4 = sampleMp4(2.5 * MiB, 3);
    timeline.finalPath = join(fixture.directories.videosDir, `${await computeMediaId(mp4)}.mp4`);
    const status = await new Promise<number>((resolve, reject) => {
      const client = new Upload(mp4, {
        endpoint: `${started.url}/files`,
        chunkSize: MiB,
        uploadLengthDeferred: deferred,
        retryDelays: [],
        metadata: { filename: "flight.mp4" },
        headers: { authorization: `Bearer ${fixture.token}` },
        onSuccess: ({ lastResponse }) => resolve(lastResponse.getStatus()),
        onError: reject,
      });
      client.start();
    });
    expect(status).toBe(200);
    expect(fixture.fake.records.size).toBe(1);
  }

  it.each([{ durability: "power" }, { fsync: true }] as const)("with %o: each PATCH's bytes synced before its offset is answered; the journal entry, the finish marker, the file and its folder before the final answer", async (setting) => {
    await upload(setting);
    expect(sortedWithin(labels(), [9, 11])).toEqual([
      // The upload's metadata (its size, name and uploader) and its name, before it exists for the client.
      "fsync upload info",
      "fsync uploads folder",
      "answer POST 201",
      "fsync upload",
      "answer PATCH 204",
      "fsync upload",
      "answer PATCH 204",
      "fsync upload",
      // The finish: the complete file synced before its link (the store's own sync), journaled, marked `placing`, linked.
      "fsync upload",
      "fdatasync journal log",
      "fsync journal folder",
      "flush finish marker",
      "fsync uploads folder",
      "fsync videos folder <placed>",
      "request POST /api/media",
      // Marked `done`, then answered.
      "flush finish marker <placed>",
      "fsync uploads folder <placed>",
      "answer PATCH 200",
    ]);
  });

  it("with durability power and the length declared by the last PATCH: the metadata synced again before the bytes, before the answer", async () => {
    await upload({ durability: "power" }, true);
    const last = labels().lastIndexOf("answer PATCH 204");
    expect(labels().slice(0, 3)).toEqual(["fsync upload info", "fsync uploads folder", "answer POST 201"]);
    expect(labels().slice(last + 1, last + 5)).toEqual(["fsync upload info", "fsync uploads folder", "fsync upload", "fsync upload"]);
    expect(labels().at(-1)).toBe("answer PATCH 200");
  });

  it.each([false, true])("with durability process (the default; the length deferred: %s): the same answers, nothing synced", async (deferred) => {
    await upload({}, deferred);
    expect(labels()).toEqual(["answer POST 201", "answer PATCH 204", "answer PATCH 204", "request POST /api/media", "answer PATCH 200"]);
  });
});
