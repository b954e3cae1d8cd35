import { defineConfig } from "tsup";

// `npm run build` empties dist/ first: the two builds below run side by side.
// `node:` prefixes stay: `node:sqlite` exists only under its prefix.
const shared = { sourcemap: true, target: "node22", platform: "node", treeshake: true, removeNodeProtocol: false } as const;
// The core, and the integrations a user may not want in it, each its own entry point.
const library = {
  index: "src/index.ts",
  "dev-annotations": "src/dev-server/index.ts",
  multer: "src/multer/index.ts",
  // The Redis journal, beside the journal API: its only peer dependency is ioredis.
  "journal/redis": "src/journal/redis.ts",
  queue: "src/queue/index.ts",
  tus: "src/tus/index.ts",
  schema: "src/schema/index.ts",
};

export default defineConfig([
  // ESM: the library and the command line share chunks, so the CLI adds only its own code.
  { ...shared, entry: { ...library, cli: "src/cli/index.ts" }, format: ["esm"], splitting: true, dts: { entry: library } },
  // CJS: the library only (the CLI uses top-level await and is never required). Shared chunks
  // here too, so media-intake/multer uses the very classes media-intake exports.
  { ...shared, entry: library, format: ["cjs"], splitting: true, dts: { entry: library } },
]);
