// What the browser suite starts from: Chromium (/usr/bin/chromium, headless, through
// playwright-core), the example started as `npm run example:express` starts it (a process of its
// own, a dev annotations server, its folders in a temp root) behind a counting proxy of ours, the
// page opened with a token, and sample files written to disk. Everything started is stopped after
// each test (the browser after each file).
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, afterEach, expect, onTestFinished } from "vitest";
import { startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { startChild } from "../helpers/child.ts";
import { exampleEnv } from "../helpers/example-env.ts";
import { signToken, storageDirectoriesIn } from "../helpers/fixture.ts";
import { makeTempDir } from "../helpers/temp-dir.ts";
import { type CountingProxy, startCountingProxy } from "./proxy.ts";

export const secret = "browser-suite-secret-0123456789abcdef";
export const MiB = 2 ** 20;
const examples = resolve(import.meta.dirname, "../../examples/express");

let browser: Browser | undefined;
const contexts: BrowserContext[] = [];
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});
afterAll(async () => {
  await browser?.close();
  browser = undefined;
});

/** Chromium, headless, launched once per test file. */
export async function launchChromium(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
  return browser;
}

export interface Example {
  /** The page's origin: the counting proxy in front of the example. */
  url: string;
  /** The example itself, past the proxy. */
  direct: string;
  proxy: CountingProxy;
  root: string;
  annotationsUrl: string;
  /** A token for `sub`: HS256 with the suite's secret, or unsigned when the example runs without JWT_SECRET. */
  token(sub: string): Promise<string>;
  /** The example's log lines so far. */
  lines(): string[];
}

/**
 * `examples/express/server.ts` in a process of its own, with a dev annotations server, its folders
 * in a fresh temp root, and `env` over the defaults; `secret: null` runs it without JWT_SECRET
 * (tokens decoded only). With `worker`, `worker.ts` too (Redis mode: give REDIS_URL in `env`).
 */
export async function startExample(options: { env?: NodeJS.ProcessEnv; secret?: string | null; worker?: boolean } = {}): Promise<Example> {
  const jwtSecret = options.secret === undefined ? secret : options.secret;
  const root = await makeTempDir("media-intake-browser-");
  const annotations = await startDevAnnotationsServer({ port: 0, dbPath: join(root, "annotations.db"), ...(jwtSecret ? { jwtSecret } : {}) });
  onTestFinished(() => annotations.close());
  const env = exampleEnv({ annotationsUrl: annotations.url, directories: storageDirectoriesIn(root), secret: jwtSecret ?? "" }, { LOG_LEVEL: "info", ...options.env });
  const server = startChild(join(examples, "server.ts"), null, env);
  const [, direct] = (await server.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
  if (options.worker) {
    const worker = startChild(join(examples, "worker.ts"), null, env);
    await worker.match(/"msg":"worker ready"/);
  }
  const proxy = await startCountingProxy(direct as string);
  onTestFinished(() => proxy.close());
  return {
    url: proxy.url,
    direct: direct as string,
    proxy,
    root,
    annotationsUrl: annotations.url,
    token: (sub) => (jwtSecret ? signToken(sub, jwtSecret, "10m") : Promise.resolve(unsignedToken(sub))),
    lines: server.lines,
  };
}

/** A token a service without JWT_SECRET decodes (as the page's "development token" makes one). */
export function unsignedToken(sub: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
}

/** The upload page in a fresh browser context, its module loaded, `token` in its field. */
export async function openPage(example: Example, token: string, viewport = { width: 1000, height: 800 }): Promise<Page> {
  const context = await (await launchChromium()).newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  // An error page.js leaves uncaught fails the test.
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  onTestFinished(() => expect(errors).toEqual([]));
  await page.goto(example.url);
  await ready(page, token);
  return page;
}

/** Waits for the page's module (it marks <html data-ready>), then fills the token in. */
export async function ready(page: Page, token: string): Promise<void> {
  await page.waitForSelector("html[data-ready]", { state: "attached" });
  await page.fill("input[name=token]", token);
}

/** The row of the file named `name` (the newest first). */
export const rowOf = (page: Page, name: string) =>
  page.locator("li.upload", { has: page.locator(".name", { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }) });

/**
 * Waits for `row` to reach `state`; a row that fails meanwhile fails the test at once, with what
 * the row says (not after a timeout).
 */
export async function reaches(row: Locator, state: "uploading" | "paused" | "done" | "error"): Promise<void> {
  await row.and(row.page().locator(`[data-state=${state}], [data-state=error]`)).waitFor();
  const reached = await row.getAttribute("data-state");
  if (reached !== state) expect.fail(`the row of ${await row.locator(".name").textContent()} failed: ${await row.locator(".message").textContent()}`);
}

/** Resolves with `promise`, unless `row` fails first: then fails the test with what the row says. */
export async function unlessFails<T>(row: Locator, promise: Promise<T>): Promise<T> {
  const failed = row
    .and(row.page().locator("[data-state=error]"))
    .waitFor({ timeout: 0 })
    .then(
      async () => ({ failed: `the row of ${await row.locator(".name").textContent()} failed: ${await row.locator(".message").textContent()}` }),
      () => new Promise<never>(() => {}),
    );
  const first = await Promise.race([promise.then((value) => ({ value })), failed]);
  if ("failed" in first) expect.fail(first.failed);
  return first.value;
}

/** Chooses `paths` in the page's file input, as a user does. */
export const choose = (page: Page, ...paths: string[]) => page.setInputFiles("input[type=file]", paths);

/** Writes `chunks` to `path` one at a time (a big file never whole in memory). */
export async function writeChunks(path: string, chunks: Iterable<Uint8Array>): Promise<string> {
  const out = createWriteStream(path);
  for (const chunk of chunks) if (!out.write(chunk)) await once(out, "drain");
  out.end();
  await once(out, "close");
  return path;
}

/** An MP4 (ftyp, moov, mdat) of about `mediaBytes` bytes, as examples/sample-media.ts makes one, written in 4 MiB parts. */
export function* mp4Chunks(mediaBytes: number, seed = 0): Generator<Uint8Array> {
  const sized = (type: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + body.length, 0);
    head.write(type, 4, "latin1");
    return Buffer.concat([head, body]);
  };
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1000, 12);
  mvhd.writeUInt32BE(5000, 16);
  mvhd.writeUInt32BE(0x00010000, 20);
  mvhd.writeUInt16BE(0x0100, 24);
  mvhd.writeUInt32BE(2, 96);
  const mdatHead = Buffer.alloc(8);
  mdatHead.writeUInt32BE(8 + mediaBytes, 0);
  mdatHead.write("mdat", 4, "latin1");
  yield Buffer.concat([sized("ftyp", Buffer.from("isom\0\0\x02\0isomiso2mp41", "latin1")), sized("moov", sized("mvhd", mvhd)), mdatHead]);
  // Byte i of the media data is (i * 31 + seed) % 251: a pattern of period 251, made once.
  const part = 4 * MiB;
  const pattern = Buffer.alloc(part + 251);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + seed) % 251;
  for (let at = 0; at < mediaBytes; at += part) yield pattern.subarray(at % 251, (at % 251) + Math.min(part, mediaBytes - at));
}
