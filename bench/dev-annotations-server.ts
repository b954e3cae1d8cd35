// The dev annotations server (SQLite, real work per call) in a process of its own, for
// bench:client. Prints its URL, then serves until stdin closes; its database is a temp file.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDevAnnotationsServer } from "../src/dev-server/index.ts";

const dir = await mkdtemp(join(tmpdir(), "bench-dev-annotations-"));
const server = await startDevAnnotationsServer({ port: 0, dbPath: join(dir, "annotations.db") });
console.log(server.url);
process.stdin.resume();
process.stdin.on("end", () => void server.close().then(() => rm(dir, { recursive: true, force: true })).then(() => process.exit(0)));
