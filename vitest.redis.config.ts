import { defineConfig } from "vitest/config";

// `npm run test:redis`: the distributed suite, against a real redis-server the suite starts on a
// free port in a temp directory (redis-server must be on PATH: Debian `redis-server`, Homebrew `redis`).
export default defineConfig({
  test: { include: ["test/redis/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: false },
});
