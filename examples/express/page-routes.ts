// The upload page at `GET /`: the static files of public/ (index.html, page.js, page.css), no
// bundler step to run it. The page's modules come from here too: media-intake/browser (the
// package's build, dist/browser.js, when there is one; else built once in memory by esbuild from
// src/browser/index.ts, with the options of tsup's browser build), the one module it imports
// (xxhash-wasm, through the page's import map), and tus-js-client's browser build (global `tus`).
import { readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Response, Router } from "express";

const root = resolve(import.meta.dirname, "../..");
const publicDir = resolve(import.meta.dirname, "public");

/** The page's files, by URL path: the file, and its type. */
const PAGE_FILES: Record<string, [file: string, type: string]> = {
  "/": [join(publicDir, "index.html"), "html"],
  "/page.js": [join(publicDir, "page.js"), "js"],
  "/page.css": [join(publicDir, "page.css"), "css"],
  "/vendor/tus.min.js": [createRequire(import.meta.url).resolve("tus-js-client/dist/tus.min.js"), "js"],
  "/vendor/xxhash-wasm.js": [fileURLToPath(import.meta.resolve("xxhash-wasm")), "js"],
};

/** Where the page's import map looks for `media-intake/browser`. */
export const BROWSER_ENTRY_PATH = "/media-intake/browser.js";

export interface PageRoutesOptions {
  /** The package's build folder: its `browser.js` is served when it exists. @default `<repo>/dist` */
  distDir?: string;
}

/** media-intake/browser as tsup builds it (tsup.config.ts), built in memory: the module and its source map. */
async function buildBrowserEntry(): Promise<{ code: string; map: string }> {
  const { build } = await import("esbuild");
  const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { dependencies?: object; peerDependencies?: object };
  // tsup leaves the package's dependencies and peers to the importer: so does this build.
  const external = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})].flatMap((name) => [name, `${name}/*`]);
  const result = await build({
    entryPoints: [join(root, "src/browser/index.ts")],
    outfile: join(root, "dist/browser.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    treeShaking: true,
    sourcemap: true,
    external,
    write: false,
    logLevel: "silent",
  });
  const text = (suffix: string) => result.outputFiles.find((file) => file.path.endsWith(suffix))?.text ?? "";
  return { code: text(".js"), map: text(".js.map") };
}

export function pageRoutes(options: PageRoutesOptions = {}): Router {
  const distDir = options.distDir ?? join(root, "dist");
  const routes = Router();
  // Built on first request, once; a failed build is tried again by the next request.
  let built: Promise<{ code: string; map: string }> | undefined;
  const inMemory = () => {
    built ??= buildBrowserEntry().catch((error: unknown) => {
      built = undefined;
      throw error;
    });
    return built;
  };
  const fresh = (res: Response) => res.set("cache-control", "no-cache");

  for (const [path, [file, type]] of Object.entries(PAGE_FILES)) {
    routes.get(path, (_req, res, next) => fresh(res).type(type).sendFile(file, (error) => error && next(error)));
  }

  routes.get([BROWSER_ENTRY_PATH, `${BROWSER_ENTRY_PATH}.map`], async (req, res, next) => {
    try {
      const map = req.path.endsWith(".map");
      const file = join(distDir, map ? "browser.js.map" : "browser.js");
      const isBuilt = await stat(join(distDir, "browser.js")).then(
        (found) => found.isFile(),
        () => false,
      );
      fresh(res).set("x-media-intake-browser", isBuilt ? "dist" : "source");
      if (isBuilt) return void res.type(map ? "json" : "js").sendFile(file, (error) => error && next(error));
      const { code, map: sourceMap } = await inMemory();
      res.type(map ? "json" : "js").send(map ? sourceMap : code);
    } catch (error) {
      next(error);
    }
  });

  return routes;
}
