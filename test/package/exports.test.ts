import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const node = process.execPath;
const expectedExports = ["intakeMedia", "trackMediaProcessing", "recoverInterrupted", "startRecovery", "createFileJournal", "fileJournalFor", "MediaRecordPendingError", "createAnnotationsClient", "MediaStatus", "storeCompleteFile", "userIdFromToken", "AuthTokenError", "storeMedia", "sweepPartials", "planStoragePath", "resolveMediaType", "detectMediaKind", "MediaType", "computeMediaId", "computeMediaIdSync", "computeVirtualMediaId", "initMediaIdHasher", "isMediaId", "isMediaIntakeError", "normalizeMediaId", "MediaIntakeError", "createPossessionCheck", "createMemoryChallengeStore", "answerDigest", "fileRangeReader", "PossessionNotProvenError", "InvalidMediaSizeError"];

let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "media-intake-package-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true }));
  // The optional peers of media-intake/journal/redis, media-intake/possession/redis, media-intake/queue and media-intake/tus, as a user of those entries installs them.
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(project, filename), "ioredis@^5", "bullmq@^6.7.0", "@tus/server@^2.4.0", "@tus/file-store@^2.1.0"], { cwd: project });
  await writeFile(join(project, "content.bin"), new Uint8Array(3072).map((_, i) => i % 251));
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

async function script(name: string, source: string): Promise<string> {
  await writeFile(join(project, name), source);
  const { stdout } = await run(node, [name], { cwd: project });
  return stdout.trim();
}

describe("the packed tarball", () => {
  it("ships only dist, docs/ (every page the README links), the README, the changelog, the license and package.json", async () => {
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root });
    const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((f) => f.path) ?? [];
    const docs = (await readdir(join(root, "docs"), { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join("/"));
    expect(docs).toEqual(expect.arrayContaining(["docs/api.md", "docs/architecture.md", "docs/contract.md", "docs/guarantees.md"]));
    expect(files.filter((path) => !path.startsWith("dist/")).sort()).toEqual(["CHANGELOG.md", "LICENSE", "README.md", ...docs, "package.json"].sort());
  });

  it("imports from ESM and computes the SPEC vector", async () => {
    const out = await script(
      "esm.mjs",
      `import * as m from "media-intake";
       console.log(JSON.stringify({ names: Object.keys(m), id: await m.computeMediaId("content.bin") }));`,
    );
    const { names, id } = JSON.parse(out) as { names: string[]; id: string };
    expect(names).toEqual(expect.arrayContaining(expectedExports));
    expect(id).toBe("f9062671e8bfb6e1");
  });

  it("requires from CJS and computes the SPEC vector", async () => {
    const out = await script(
      "cjs.cjs",
      `const m = require("media-intake");
       m.computeMediaId("content.bin").then((id) => console.log(JSON.stringify({ names: Object.keys(m), id })));`,
    );
    const { names, id } = JSON.parse(out) as { names: string[]; id: string };
    expect(names).toEqual(expect.arrayContaining(expectedExports));
    expect(id).toBe("f9062671e8bfb6e1");
  });

  it("imports every entry point from ESM and CJS, the deprecated paths of 0.1 included", async () => {
    // Each entry's names, and whether the deprecated names of media-intake/queue are the very functions of their new homes.
    const report = `console.log(JSON.stringify({
         "dev-annotations": typeof devAnnotations.startDevAnnotationsServer, multer: typeof multer.mediaIntakeStorage,
         "journal/redis": typeof journalRedis.createRedisJournal,
         "possession/redis": typeof possessionRedis.createRedisChallengeStore,
         tus: [typeof tus.createTusIntake, typeof tus.createRedisTusLocker],
         queue: [typeof queue.createDetectionQueue, typeof queue.startDetectionWorker, typeof queue.DetectionFailedError],
         deprecated: [queue.createRedisJournal === journalRedis.createRedisJournal, queue.createRedisTusLocker === tus.createRedisTusLocker],
       }));`;
    const esm = await script(
      "entries.mjs",
      `import * as devAnnotations from "media-intake/dev-annotations"; import * as multer from "media-intake/multer";
       import * as journalRedis from "media-intake/journal/redis"; import * as tus from "media-intake/tus"; import * as queue from "media-intake/queue";
       import * as possessionRedis from "media-intake/possession/redis";
       ${report}`,
    );
    const cjs = await script(
      "entries.cjs",
      `const devAnnotations = require("media-intake/dev-annotations"); const multer = require("media-intake/multer");
       const journalRedis = require("media-intake/journal/redis"); const tus = require("media-intake/tus"); const queue = require("media-intake/queue");
       const possessionRedis = require("media-intake/possession/redis");
       ${report}`,
    );
    const expected = {
      "dev-annotations": "function",
      multer: "function",
      "journal/redis": "function",
      "possession/redis": "function",
      tus: ["function", "function"],
      queue: ["function", "function", "function"],
      deprecated: [true, true],
    };
    expect(JSON.parse(esm)).toEqual(expected);
    expect(JSON.parse(cjs)).toEqual(expected);
  });

  it("loads media-intake/tus without ioredis, which only the Redis tus locker needs", async () => {
    // Every package the entry loads (ESM import and CJS require alike), as the resolver sees it.
    const watch = `const { registerHooks } = require("node:module");
       const loaded = new Set();
       registerHooks({ resolve(specifier, context, next) { const found = next(specifier, context); const m = found.url.match(/node_modules\\/((@[^/]+\\/)?[^/]+)\\//); if (m && m[1] !== "media-intake") loaded.add(m[1]); return found; } });`;
    const esm = await script("tus-no-redis.mjs", `import { createRequire } from "node:module"; const require = createRequire(import.meta.url); ${watch}
       const tus = await import("media-intake/tus");
       console.log(typeof tus.createTusIntake, typeof tus.createRedisTusLocker, loaded.has("@tus/server"), loaded.has("ioredis"));`);
    const cjs = await script("tus-no-redis.cjs", `${watch}
       const tus = require("media-intake/tus");
       console.log(typeof tus.createTusIntake, typeof tus.createRedisTusLocker, loaded.has("@tus/server"), loaded.has("ioredis"));`);
    // @tus/server seen loading: the watch works; ioredis never is.
    expect([esm, cjs]).toEqual(["function function true false", "function function true false"]);
  });

  it("loads no HTTP, JWT, schema or file-type library at import: only what the media ID needs", async () => {
    const out = await script(
      "lazy.mjs",
      `import { registerHooks } from "node:module";
       const loaded = new Set();
       registerHooks({ resolve(specifier, context, next) { const found = next(specifier, context); const m = found.url.match(/node_modules\\/((@[^/]+\\/)?[^/]+)\\//); if (m && m[1] !== "media-intake") loaded.add(m[1]); return found; } });
       const { computeMediaId } = await import("media-intake");
       const id = await computeMediaId("content.bin");
       console.log(id, [...loaded].sort().join(","));`,
    );
    expect(out).toMatch(/^[0-9a-f]{16} xxhash-wasm$/);
  });

  it("media-intake/schema parses a record the service sends", async () => {
    const out = await script(
      "schema.mjs",
      `import { MediaRecord } from "media-intake/schema";
       console.log(JSON.stringify(MediaRecord.parse({ id: "00000000000000AB", name: "a.png", path: "/a.png", mediaType: "Image", mediaStatus: 3, userId: "u" })));`,
    );
    expect(JSON.parse(out)).toEqual({ id: "00000000000000ab", name: "a.png", path: "/a.png", mediaType: 2, mediaStatus: 3, userId: "u" });
  });

  it("runs a dev annotations server from the installed package, and the core's client talks to it", async () => {
    const out = await script(
      "flow.mjs",
      `import { startDevAnnotationsServer } from "media-intake/dev-annotations";
       import { createAnnotationsClient } from "media-intake";
       const server = await startDevAnnotationsServer({ dbPath: ":memory:" });
       const token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.";
       const client = createAnnotationsClient({ baseUrl: server.url, token });
       const record = await client.media.create({ id: "00000000000000ab", name: "a.png", path: "/a.png", mediaType: 2, userId: "u" });
       console.log(record.mediaStatus);
       await server.close();`,
    );
    expect(out).toBe("1");
  });

  it("installs the media-intake command", async () => {
    const bin = join(project, "node_modules", ".bin", "media-intake");
    const { stdout } = await run(node, [bin, "id", "content.bin"], { cwd: project });
    expect(stdout).toBe("f9062671e8bfb6e1  content.bin\n");
    const version = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
    expect((await run(node, [bin, "--version"], { cwd: project })).stdout.trim()).toBe(version.version);
  });
});
