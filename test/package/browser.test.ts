// media-intake/browser from the packed tarball, as a web project uses it: installed, imported from
// a page's module and bundled for the browser by esbuild. The bundle must hold nothing of Node,
// and it must compute the contract's ID.
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
  project = await mkdtemp(join(tmpdir(), "media-intake-browser-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", project], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "web-page", private: true, type: "module" }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(project, filename)], { cwd: project });
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe("media-intake/browser from the packed tarball", () => {
  it("bundles with esbuild --bundle --platform=browser, without node: or Buffer, and the bundle computes the contract's ID", async () => {
    await writeFile(
      join(project, "page.js"),
      `import { computeMediaId } from "media-intake/browser";
       const bytes = new Uint8Array(3072).map((_, i) => i % 251);
       console.log(await computeMediaId(new Blob([bytes])));`,
    );
    const esbuild = join(root, "node_modules/.bin/esbuild");
    await run(esbuild, ["page.js", "--bundle", "--platform=browser", "--format=esm", "--outfile=bundle.js", "--log-level=warning"], { cwd: project });
    const bundle = await readFile(join(project, "bundle.js"), "utf8");
    expect(bundle).not.toMatch(/["']node:/);
    expect(bundle).not.toMatch(/\bBuffer\b/);
    expect(bundle).not.toMatch(/from\s*["'](media-intake|xxhash-wasm)/);
    // The bundle runs anywhere with Blob and WebAssembly: here, Node, from a file of its own.
    expect((await run(process.execPath, ["bundle.js"], { cwd: project })).stdout.trim()).toBe("f9062671e8bfb6e1");
  });

  it("leaves tus-js-client, an optional peer not installed here, to run time: the bundle builds, and uploading without it names the package", async () => {
    await writeFile(
      join(project, "upload.js"),
      `import { uploadResumable } from "media-intake/browser";
       const upload = uploadResumable(new File([new Uint8Array(10)], "a.mp4"), { endpoint: "http://127.0.0.1:9/files", token: "t" });
       upload.done.catch((error) => console.log(\`\${error.name}: \${error.message}\`));`,
    );
    const esbuild = join(root, "node_modules/.bin/esbuild");
    await run(esbuild, ["upload.js", "--bundle", "--platform=browser", "--format=esm", "--outfile=upload.bundle.js", "--log-level=warning"], { cwd: project });
    const bundle = await readFile(join(project, "upload.bundle.js"), "utf8");
    expect(bundle).toMatch(/import\(["']tus-js-client["']\)/);
    expect(bundle).not.toMatch(/["']node:/);
    expect((await run(process.execPath, ["upload.bundle.js"], { cwd: project })).stdout.trim()).toMatch(
      /^MissingPeerDependencyError: uploadResumable \(media-intake\/browser\) needs the optional peer dependency "tus-js-client": npm install tus-js-client\./,
    );
  });

  it("is ESM only: import() loads it, require() is told it is not exported for CommonJS", async () => {
    await writeFile(join(project, "load.mjs"), `const m = await import("media-intake/browser"); console.log(typeof m.computeMediaId);`);
    expect((await run(process.execPath, ["load.mjs"], { cwd: project })).stdout.trim()).toBe("function");
    await writeFile(join(project, "load.cjs"), `try { require("media-intake/browser"); console.log("loaded"); } catch (error) { console.log(error.code); }`);
    expect((await run(process.execPath, ["load.cjs"], { cwd: project })).stdout.trim()).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED");
  });
});
