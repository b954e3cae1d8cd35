// Every public function refuses an option it does not know, naming it (and the one meant when
// only the case differs), before it does anything: a typo is never ignored in silence.
import { describe, expect, it } from "vitest";
import {
  computeMediaId,
  createAnnotationsClient,
  createFileJournal,
  intakeMedia,
  recoverInterrupted,
  startRecovery,
  storeMedia,
  sweepPartials,
  trackMediaProcessing,
  userIdFromToken,
} from "../src/index.ts";
import { mediaIntakeStorage } from "../src/multer/index.ts";

const client = createAnnotationsClient({ baseUrl: "http://127.0.0.1:9" });
const directories = { videosDir: "/nonexistent/v", imagesDir: "/nonexistent/i" };
const loose = (options: object) => options as never;

describe("unknown options", () => {
  it("are refused by every function that takes options", async () => {
    const bytes = new Uint8Array(4);
    await expect(storeMedia(bytes, loose({ originalName: "a.png", directories, maxbytes: 1 }))).rejects.toThrow(
      "Unknown option `maxbytes` of storeMedia (did you mean `maxBytes`?).",
    );
    await expect(intakeMedia(bytes, loose({ originalName: "a.png", directories, client, token: "t", leaseMs: 5 }))).rejects.toThrow(
      "Unknown option `leaseMs` of intakeMedia.",
    );
    expect(() => trackMediaProcessing(() => 1, loose({ client, directorys: directories }))).toThrow("Unknown option `directorys` of trackMediaProcessing.");
    expect(() => trackMediaProcessing(() => 1, { client }).with(loose({ tokn: "x" }))).toThrow("Unknown option `tokn` of a tracked function's `with`.");
    await expect(userIdFromToken("x.y.z", loose({ claims: ["sub"] }))).rejects.toThrow("Unknown option `claims` of userIdFromToken.");
    await expect(userIdFromToken("x.y.z", loose({ verify: { Secret: "s" } }))).rejects.toThrow(
      "Unknown option `Secret` of userIdFromToken's `verify` (did you mean `secret`?).",
    );
    await expect(computeMediaId(bytes, loose({ Size: 4 }))).rejects.toThrow("Unknown option `Size` of computeMediaId (did you mean `size`?).");
    await expect(recoverInterrupted(loose({ client, directories, leaseMs: 1 }))).rejects.toThrow("Unknown option `leaseMs` of recoverInterrupted.");
    expect(() => startRecovery(loose({ client, directories, interval: 5 }))).toThrow("Unknown option `interval` of startRecovery.");
    await expect(sweepPartials(directories, loose({ olderthanms: 1 }))).rejects.toThrow("Unknown option `olderthanms` of sweepPartials (did you mean `olderThanMs`?).");
    expect(() => createFileJournal("/nonexistent/j", loose({ heartbeat: 1 }))).toThrow("Unknown option `heartbeat` of createFileJournal.");
    expect(() => mediaIntakeStorage(loose({ client, directories, maxbytes: 1 }))).toThrow("Unknown option `maxbytes` of mediaIntakeStorage (did you mean `maxBytes`?).");
  });
});
