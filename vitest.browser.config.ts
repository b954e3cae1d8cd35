import { defineConfig } from "vitest/config";

// `npm run test:browser`: the example's upload page in a real Chromium (playwright-core driving
// /usr/bin/chromium, headless), against the example started as `npm run example:express` starts it.
// One file at a time: each runs a browser, the example and big uploads, on 2 cores.
export default defineConfig({
  test: { include: ["test/browser/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false },
});
