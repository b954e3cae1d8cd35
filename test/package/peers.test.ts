// The optional peers, missing: the packed tarball installed in a project without them, each entry
// point imported (ESM) and required (CJS) as a user would, before installing what it asks for.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "media-intake-no-peers-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "no-peers", private: true }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(project, filename)], { cwd: project });
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

/** What loading `entry` gives in each format: "loaded", or the error's name and message. */
async function load(entry: string): Promise<{ esm: string; cjs: string }> {
  const report = `(error) => console.log(error ? \`\${error.name}: \${error.message}\` : "loaded")`;
  await writeFile(join(project, "load.mjs"), `import(${JSON.stringify(entry)}).then(() => (${report})(), ${report});`);
  await writeFile(join(project, "load.cjs"), `try { require(${JSON.stringify(entry)}); (${report})(); } catch (error) { (${report})(error); }`);
  const [esm, cjs] = await Promise.all(["load.mjs", "load.cjs"].map((file) => run(process.execPath, [file], { cwd: project })));
  return { esm: esm?.stdout.trim() ?? "", cjs: cjs?.stdout.trim() ?? "" };
}

const both = (message: string) => ({ esm: message, cjs: message });

describe("an entry point whose optional peer is not installed", () => {
  it("names the package and its install command, from ESM import and CJS require alike", async () => {
    expect(await load("media-intake/queue")).toEqual(both('MissingPeerDependencyError: media-intake/queue needs the optional peer dependency "bullmq": npm install bullmq'));
    expect(await load("media-intake/journal/redis")).toEqual(both('MissingPeerDependencyError: media-intake/journal/redis needs the optional peer dependency "ioredis": npm install ioredis'));
    expect(await load("media-intake/possession/redis")).toEqual(both('MissingPeerDependencyError: media-intake/possession/redis needs the optional peer dependency "ioredis": npm install ioredis'));
    expect(await load("media-intake/tus")).toEqual(
      both('MissingPeerDependencyError: media-intake/tus needs the optional peer dependencies "@tus/server" and "@tus/file-store": npm install @tus/server @tus/file-store'),
    );
    // The entries without a peer to load: media-intake/multer is handed to the multer the user installed.
    for (const entry of ["media-intake", "media-intake/multer", "media-intake/dev-annotations", "media-intake/schema"]) expect(await load(entry)).toEqual(both("loaded"));
  });

  it("loads once the peers it named are installed, and the Redis tus locker names ioredis when it is made without it", async () => {
    // @tus/server's optional dependencies hold ioredis: left out, as a user's `--omit=optional` does.
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=optional", "@tus/server@^2.4.0", "@tus/file-store@^2.1.0"], { cwd: project });
    expect(await load("media-intake/tus")).toEqual(both("loaded"));
    const lock = (imported: string) => `${imported}
      const locker = createRedisTusLocker({ connection: "redis://127.0.0.1:1" });
      locker.newLock("a").lock(new AbortController().signal, () => {}).then(
        () => console.log("locked"),
        (error) => console.log(\`\${error.name}: \${error.message}\`),
      ).finally(() => process.exit());`;
    await writeFile(join(project, "locker.mjs"), lock(`import { createRedisTusLocker } from "media-intake/tus";`));
    await writeFile(join(project, "locker.cjs"), lock(`const { createRedisTusLocker } = require("media-intake/tus");`));
    const message = 'MissingPeerDependencyError: createRedisTusLocker (media-intake/tus) needs the optional peer dependency "ioredis": npm install ioredis';
    for (const file of ["locker.mjs", "locker.cjs"]) expect((await run(process.execPath, [file], { cwd: project })).stdout.trim()).toBe(message);
  });
});
