// The example while its journal cannot be written: a read-only journal folder (a read-only bind
// mount over it: we run as root, so a chmod would not stop a write). Every upload is answered
// at once with 503 and Retry-After, nothing is kept, and uploads work again once it is writable.
import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDetectionsApp } from "../examples/express/app.ts";
import { serve } from "../examples/express/serve.ts";
import { samplePng } from "../examples/sample-media.ts";
import { computeMediaId, createAnnotationsClient } from "../src/index.ts";
import { JOURNAL_DIRECTORY_NAME } from "../src/journal/index.ts";
import { useDevFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";

const secret = "express-unavailable-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
let app: Awaited<ReturnType<typeof serve>>;
const mounted: string[] = [];

beforeEach(async () => {
  const express = createDetectionsApp({ client: createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.token, retry: false }), directories: fixture.directories, auth: { verify: { secret } } });
  app = await serve(express, { host: "127.0.0.1", port: 0, logger: pino({ enabled: false }) });
});
afterEach(async () => {
  for (const path of mounted.splice(0)) execFileSync("umount", [path]);
  app.server.closeAllConnections();
  await new Promise((r) => app.server.close(r));
});

function readOnly(path: string): void {
  execFileSync("mount", ["--bind", path, path]);
  mounted.push(path);
  execFileSync("mount", ["-o", "remount,bind,ro", path]);
}

async function upload(seed: number) {
  const form = new FormData();
  form.append("file", new Blob([samplePng(16, 16, seed) as Uint8Array<ArrayBuffer>]), `p${seed}.png`);
  const response = await fetch(`${app.url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { error?: { code: string } } };
}

describe("the example with its journal folder read-only", () => {
  it("answers 20 of 20 uploads with 503 and Retry-After, keeps nothing, and takes uploads again once it is writable", async () => {
    const journalDir = join(fixture.directories.videosDir, JOURNAL_DIRECTORY_NAME);
    await mkdir(journalDir, { recursive: true });
    readOnly(journalDir);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(i)));
    expect(answers).toEqual(Array.from({ length: 20 }, () => ({ status: 503, retryAfter: "5", body: { error: expect.objectContaining({ code: "JOURNAL_UNAVAILABLE" }) } })));
    expect((await filesUnder(fixture.root)).filter((path) => path.startsWith("images/"))).toEqual([]);
    const client = createAnnotationsClient({ baseUrl: fixture.annotations.url, token: fixture.token });
    await expect(client.media.get(await computeMediaId(samplePng(16, 16, 0)))).rejects.toMatchObject({ code: "MEDIA_NOT_FOUND" });
    execFileSync("umount", [mounted.pop() as string]);
    expect(await upload(1)).toMatchObject({ status: 200 });
  });
});
