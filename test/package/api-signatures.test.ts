// docs/api.md against the packed package's types: each signature block (```ts declarations, no
// import) is compiled as ambient declarations beside the real export of its entry point, and each
// documented function must be assignable to the real one and the real one to it. A parameter, an
// overload, a return type or an `async` that drifts fails here. The entry point is the one the
// section's heading names (`(media-intake/queue)`), else media-intake.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "media-intake-api-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "api-reader", private: true, type: "module" }));
  const peers = ["@types/node@^24", "bullmq@^6.7.0", "ioredis@^5", "@tus/server@^2.4.0", "@tus/file-store@^2.1.0"];
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(project, filename), ...peers], { cwd: project });
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

/** The names an entry's declaration file exports (types and values), read from its `export { … }` statements. */
async function exportedNames(entry: string): Promise<Set<string>> {
  const file = entry === "media-intake" ? "index" : entry.slice("media-intake/".length);
  const types = await readFile(join(project, "node_modules/media-intake/dist", `${file}.d.ts`), "utf8");
  const names = [...types.matchAll(/^export (?:type )?\{([^}]*)\}/gm)].flatMap((match) =>
    (match[1] as string).split(",").map((item) => item.trim().replace(/^type /, "").split(/\s+as\s+/).pop() as string),
  );
  return new Set(names.filter(Boolean));
}

/** Each signature block of the page, with the entry point its section names. */
function signatureBlocks(page: string): Array<{ entry: string; heading: string; block: string }> {
  return page.split(/^(?=## )/m).flatMap((section) => {
    const heading = section.split("\n")[0] as string;
    const entry = /\(`(media-intake\/[^`]+)`\)/.exec(heading)?.[1] ?? "media-intake";
    return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string).filter((block) => !/^import\b/m.test(block)).map((block) => ({ entry, heading, block }));
  });
}

describe("docs/api.md", () => {
  it("documents each function with a signature that is the real export's, against the packed package", async () => {
    const page = await readFile(join(root, "docs/api.md"), "utf8");
    const blocks = signatureBlocks(page);
    // Every section that names a function call in its heading has its signature block.
    const headings = page.match(/^## .*\w\(.*$/gm) ?? [];
    expect(headings.filter((heading) => !blocks.some((block) => block.heading === heading))).toEqual([]);
    const core = await exportedNames("media-intake");
    const files = await Promise.all(
      blocks.map(async ({ entry, block }, index) => {
        const own = entry === "media-intake" ? core : await exportedNames(entry);
        const functions = [...new Set([...block.matchAll(/^function (\w+)/gm)].map((match) => match[1] as string))];
        const used = new Set(block.match(/\b[A-Z]\w*/g) ?? []);
        const from = (names: Set<string>, skip: Set<string> = new Set()) => [...used].filter((name) => names.has(name) && !skip.has(name));
        const source = [
          `import * as real from ${JSON.stringify(entry)};`,
          `import type { ${from(own).join(", ")} } from ${JSON.stringify(entry)};`,
          entry === "media-intake" ? "" : `import type { ${from(core, own).join(", ")} } from "media-intake";`,
          `declare namespace doc {\n${block}}`,
          ...functions.flatMap((name) => [`export const ${name}ToReal: typeof real.${name} = doc.${name};`, `export const ${name}FromReal: typeof doc.${name} = real.${name};`]),
        ];
        const file = `api-${index + 1}.ts`;
        await writeFile(join(project, file), `${source.filter((line) => !/import type \{ {2}\}/.test(line)).join("\n")}\n`);
        return { file, functions };
      }),
    );
    expect(files.flatMap(({ functions }) => functions).length).toBeGreaterThanOrEqual(30);
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2023", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
        files: files.map(({ file }) => file),
      }),
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", project]).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result).toBe("");
  });
});
