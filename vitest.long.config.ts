import { defineConfig } from "vitest/config";

// `npm run test:long`: uploads that take minutes or gigabytes, through the example.
export default defineConfig({
  test: { include: ["test/long/**/*.test.ts"], testTimeout: 15 * 60_000, hookTimeout: 60_000, fileParallelism: false },
});
