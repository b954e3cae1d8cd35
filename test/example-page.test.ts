// The example's upload page as files over HTTP (test/browser drives it in Chromium): GET / and
// its static files with no token, tus-js-client's browser build as is, and media-intake/browser
// from the package's build when there is one, else built in memory from src/browser by esbuild as
// tsup builds it, its imports all in the page's import map.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { BROWSER_ENTRY_PATH, pageRoutes } from "../examples/express/page-routes.ts";
import { createAnnotationsClient } from "../src/index.ts";
import { startServer } from "./helpers/http-server.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

const publicDir = resolve(import.meta.dirname, "../examples/express/public");
const started: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  for (const one of started.splice(0)) await one.close();
});

async function serve(app: express.Express): Promise<string> {
  const server = await startServer(app);
  started.push(server);
  return server.url;
}

async function get(url: string) {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get("content-type") ?? "", from: response.headers.get("x-media-intake-browser"), body: await response.text() };
}

/** The page's import map: bare specifier -> URL path. */
async function importMap(): Promise<Record<string, string>> {
  const html = await readFile(join(publicDir, "index.html"), "utf8");
  const [, json] = html.match(/<script type="importmap">([\s\S]*?)<\/script>/) as RegExpMatchArray;
  return (JSON.parse(json as string) as { imports: Record<string, string> }).imports;
}

describe("the example's upload page (GET /)", () => {
  it("serves the page, its script, its style and tus-js-client's browser build, without a token", async () => {
    const root = await makeTempDir();
    const url = await serve(
      createDetectionsApp({
        client: createAnnotationsClient({ baseUrl: "http://127.0.0.1:9" }),
        directories: { videosDir: join(root, "videos"), imagesDir: join(root, "images") },
        auth: {},
      }),
    );
    const page = await get(`${url}/`);
    expect(page).toMatchObject({ status: 200, type: expect.stringContaining("text/html") });
    expect(page.body).toContain('name="token"');
    expect(page.body).toMatch(/<input id="files" name="files" type="file" multiple/);
    expect(await get(`${url}/page.js`)).toMatchObject({ status: 200, type: expect.stringContaining("javascript"), body: await readFile(join(publicDir, "page.js"), "utf8") });
    expect(await get(`${url}/page.css`)).toMatchObject({ status: 200, type: expect.stringContaining("text/css") });
    const tus = await get(`${url}/vendor/tus.min.js`);
    expect(tus).toMatchObject({ status: 200, type: expect.stringContaining("javascript") });
    expect(tus.body).toBe(await readFile(createRequire(import.meta.url).resolve("tus-js-client/dist/tus.min.js"), "utf8"));
    // Every module the page names is served.
    for (const path of Object.values(await importMap())) expect((await get(`${url}${path}`)).status, path).toBe(200);
    expect((await get(`${url}/public/page.js`)).status).toBe(404);
  });

  it("serves media-intake/browser from the package's build when there is one", async () => {
    const dist = await makeTempDir();
    await writeFile(join(dist, "browser.js"), "export const built = true;\n//# sourceMappingURL=browser.js.map\n");
    await writeFile(join(dist, "browser.js.map"), '{"version":3}');
    const url = await serve(express().use(pageRoutes({ distDir: dist })));
    expect(await get(`${url}${BROWSER_ENTRY_PATH}`)).toMatchObject({ status: 200, from: "dist", type: expect.stringContaining("javascript"), body: "export const built = true;\n//# sourceMappingURL=browser.js.map\n" });
    expect(await get(`${url}${BROWSER_ENTRY_PATH}.map`)).toMatchObject({ status: 200, body: '{"version":3}' });
  });

  it("else builds it once in memory from src/browser: ESM for the browser, nothing of Node, each import in the page's import map", async () => {
    const dist = join(await makeTempDir(), "dist");
    const url = await serve(express().use(pageRoutes({ distDir: dist })));
    const entry = await get(`${url}${BROWSER_ENTRY_PATH}`);
    expect(entry).toMatchObject({ status: 200, from: "source", type: expect.stringContaining("javascript") });
    expect(entry.body).toMatch(/export\s*\{[^}]*computeMediaId/);
    expect(entry.body).not.toMatch(/["']node:/);
    expect(entry.body).toContain("//# sourceMappingURL=browser.js.map");
    const map = JSON.parse((await get(`${url}${BROWSER_ENTRY_PATH}.map`)).body) as { sources: string[] };
    expect(map.sources.filter((source) => source.startsWith("../src/browser/"))).not.toEqual([]);
    // The package's dependencies stay imports, as tsup leaves them: the import map resolves each.
    const imports = [...entry.body.matchAll(/^import\s[^;]*?from\s*["']([^"'.][^"']*)["']/gm)].map((match) => match[1] as string);
    expect(imports).toContain("xxhash-wasm");
    const mapped = await importMap();
    for (const name of imports) expect(mapped, name).toHaveProperty([name]);
    // Built once: the same module again, at once.
    expect((await get(`${url}${BROWSER_ENTRY_PATH}`)).body).toBe(entry.body);
    // And from the build folder as soon as there is one.
    await mkdir(dist);
    await writeFile(join(dist, "browser.js"), "export {};\n");
    expect(await get(`${url}${BROWSER_ENTRY_PATH}`)).toMatchObject({ from: "dist", body: "export {};\n" });
  });
});
