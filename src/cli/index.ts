#!/usr/bin/env node
import { runCli } from "./main.ts";

// A reader that went away (\`media-intake id … | head -1\`) is the normal end of a pipeline,
// not a crash: stop quietly, as coreutils do.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
process.exitCode = await runCli(process.argv.slice(2), process);
