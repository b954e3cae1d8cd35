// The TypeScript blocks of the README and of docs/, pasted into a new project that installed the
// packed tarball, type-check against it. Names a block uses without defining (the request, the
// upload stream, your detector) are declared once, as a reader's own code would provide them.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
let project: string;

/** What the snippets take from the reader's own handler. */
const readerContext = `import type { Readable } from "node:stream";
import type { Request, Response, Express } from "express";
import type { AnnotationsClient, StorageDirectories, StoredMedia } from "media-intake";
declare global {
  const req: Request;
  const res: Response;
  const app: Express;
  const request: Request;
  const fileStream: Readable;
  const uploadStream: Readable;
  const declaredLength: number;
  const originalName: string;
  const maxBytes: number;
  const signal: AbortSignal;
  const client: AnnotationsClient;
  const directories: StorageDirectories;
  /** What the block before it stored. */
  const stored: StoredMedia;
  function runDetector(path: string, signal: AbortSignal): Promise<unknown>;
}
export {};
`;

/**
 * The TypeScript blocks of a page that a reader can paste whole: those with an import. A block
 * without one is a fragment of a larger call (`authorize: (record, caller) => …`), not a program.
 */
function typeScriptBlocks(page: string): string[] {
  return [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string).filter((block) => /^import\b/m.test(block));
}

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "media-intake-readme-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "reader", private: true, type: "module" }));
  const devTypes = ["@types/node@^24", "express@^5", "@types/express@^5", "multer@^2", "@types/multer@^2", "bullmq@^6.7.0", "ioredis@^5", "@tus/server@^2.4.0", "@tus/file-store@^2.1.0", "tus-js-client@^4"];
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(project, filename), ...devTypes], { cwd: project });
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe("the README", () => {
  it("has TypeScript blocks, and so has docs/, that type-check against the packed package", async () => {
    const readme = await readFile(join(root, "README.md"), "utf8");
    expect(typeScriptBlocks(readme).length).toBeGreaterThanOrEqual(5);
    // Each block in a file named after its page (`docs-tus-2.ts`), so that an error says where it is.
    const pages = ["README.md", ...(await readdir(join(root, "docs"))).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)];
    const blocks = (
      await Promise.all(
        pages.map(async (page) =>
          typeScriptBlocks(await readFile(join(root, page), "utf8")).map((block, index) => ({
            file: `${page.replace(/\.md$/, "").replace("/", "-").toLowerCase()}-${index + 1}.ts`,
            block,
          })),
        ),
      )
    ).flat();
    expect(blocks.filter(({ file }) => file.startsWith("docs-")).length).toBeGreaterThanOrEqual(4);
    const files = blocks.map(({ file }) => file);
    await Promise.all(blocks.map(({ file, block }) => writeFile(join(project, file), `${block}\nexport {};\n`)));
    await writeFile(join(project, "reader-context.d.ts"), readerContext);
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2023", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
        files: ["reader-context.d.ts", ...files],
      }),
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", project]).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result).toBe("");
  });

  it("type-checks every entry point with skipLibCheck: false, media-intake/tus included", async () => {
    // A project that checks the declaration files of its dependencies too: no type of this package
    // may reach a type its peers leave unresolved (@tus/server's srvx types need aws-lambda, Bun,
    // Deno: importing @tus/server itself here would fail on them, whatever this package does).
    const strict = join(project, "strict");
    await mkdir(strict, { recursive: true });
    await writeFile(
      join(strict, "entries.ts"),
      `import * as core from "media-intake";
import { createRedisTusLocker, createTusIntake, type TusIntakeOptions, type TusLocker } from "media-intake/tus";
import * as queue from "media-intake/queue";
import * as journalRedis from "media-intake/journal/redis";
import * as possessionRedis from "media-intake/possession/redis";
import * as multer from "media-intake/multer";
import * as devAnnotations from "media-intake/dev-annotations";
import * as schema from "media-intake/schema";
const redis: TusLocker = createRedisTusLocker({ connection: "redis://127.0.0.1:6379" });
declare const options: TusIntakeOptions;
const tus = createTusIntake({ ...options, locker: redis });
tus.server.on("POST_CREATE", (_request: unknown, upload: { id: string }) => console.log(upload.id));
export { core, queue, journalRedis, possessionRedis, multer, devAnnotations, schema, redis };
`,
    );
    await writeFile(
      join(strict, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2023", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: false, types: ["node"] },
        files: ["entries.ts"],
      }),
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", strict]).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result).toBe("");
  });

  it("has a complete block that runs as is", async () => {
    const readme = await readFile(join(root, "README.md"), "utf8");
    const runnable = [...readme.matchAll(/```ts\n(\/\/ Runs as is\.\n[\s\S]*?)```/g)].map((match) => match[1] as string);
    expect(runnable).toHaveLength(1);
    const { samplePng } = await import("../../examples/sample-media.ts");
    await writeFile(join(project, "photo.png"), samplePng(32, 24, 5));
    await writeFile(join(project, "run.ts"), runnable[0] as string);
    const { stdout } = await run(process.execPath, ["run.ts"], { cwd: project });
    expect(stdout.trim()).toMatch(/^[0-9a-f]{16} \[\s*\{\s*label: 'cat',\s*file: '[^']*\/data\/images\/[0-9a-f]{16}\.png'\s*\}\s*\] 3$/);
  });
});
