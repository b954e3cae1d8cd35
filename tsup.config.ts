import { defineConfig } from "tsup";

// `npm run build` empties dist/ first: the three builds below run side by side.
// `node:` prefixes stay: `node:sqlite` exists only under its prefix.
const shared = { sourcemap: true, target: "node22", platform: "node", treeshake: true, removeNodeProtocol: false } as const;
// The core, and the integrations a user may not want in it, each its own entry point.
const library = {
  index: "src/index.ts",
  "dev-annotations": "src/dev-server/index.ts",
  multer: "src/multer/index.ts",
  // The Redis journal, beside the journal API: its only peer dependency is ioredis.
  "journal/redis": "src/journal/redis-entry.ts",
  // The possession check's challenge store on Redis, for several hosts: its only peer dependency is ioredis.
  "possession/redis": "src/possession/redis-entry.ts",
  queue: "src/queue/index.ts",
  tus: "src/tus/index.ts",
  schema: "src/schema/index.ts",
};

// The optional peers are loaded per format (src/utils/peers.ts): an `import()` at the top level in
// ESM, a `require` in CJS. The CJS build is made as ESM by esbuild, then turned into CJS by
// Rollup, which refuses a top-level await even in a branch never taken: esbuild's syntax
// minification removes that branch first (names and white space are kept).
const format = (name: "esm" | "cjs") => ({
  define: { "process.env.MEDIA_INTAKE_FORMAT": JSON.stringify(name) },
  ...(name === "cjs" ? { esbuildOptions: (options: { minifySyntax?: boolean }) => void (options.minifySyntax = true) } : {}),
});

export default defineConfig([
  // ESM: the library and the command line share chunks, so the CLI adds only its own code.
  { ...shared, ...format("esm"), entry: { ...library, cli: "src/cli/index.ts" }, format: ["esm"], splitting: true, dts: { entry: library } },
  // CJS: the library only (the CLI uses top-level await and is never required). Shared chunks
  // here too, so media-intake/multer uses the very classes media-intake exports.
  { ...shared, ...format("cjs"), entry: library, format: ["cjs"], splitting: true, dts: { entry: library } },
  // media-intake/browser: ESM only, for bundlers that target the browser; a bundle of its own (no
  // chunk shared with the Node builds, whose chunks import node: modules).
  { sourcemap: true, treeshake: true, entry: { browser: "src/browser/index.ts" }, format: ["esm"], platform: "browser", target: "es2022", dts: true },
]);
