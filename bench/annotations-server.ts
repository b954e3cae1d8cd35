// The fake annotations service in a process of its own, so the benchmark's client and server do
// not share one event loop. Prints its URL, then serves until stdin closes.
import { createFakeAnnotations, startFakeAnnotationsServer } from "../test/helpers/fake-annotations.ts";

const service = await startFakeAnnotationsServer(createFakeAnnotations());
console.log(service.url);
process.stdin.resume();
process.stdin.on("end", () => void service.close().then(() => process.exit(0)));
