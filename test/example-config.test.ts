// The example's settings checked at start (examples/express/config.ts): each bad value stops the
// process with one line on stderr naming the variable, the value and the form expected, exit 1.
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { readServerConfig } from "../examples/express/config.ts";
import { sampleMp4, samplePng } from "../examples/sample-media.ts";
import { startChild } from "./helpers/child.ts";
import { exampleEnv } from "./helpers/example-env.ts";
import { useDevFixture } from "./helpers/fixture.ts";
import { mountSmallTmpfs } from "./helpers/tmpfs.ts";

const secret = "example-config-secret-0123456789abcdef";
const fixture = useDevFixture({ secret, sub: "alice" });
const server = resolve(import.meta.dirname, "../examples/express/server.ts");
const worker = resolve(import.meta.dirname, "../examples/express/worker.ts");

/** The line of a JWT_SECRET of `bytes` bytes: the length, never the secret. */
const shortSecret = (bytes: number) =>
  `JWT_SECRET is ${bytes} byte${bytes === 1 ? "" : "s"} long: an HS256 secret needs at least 32 bytes (256 bits, RFC 7518 section 3.2); make one with: openssl rand -base64 32`;
/** The line of an ANNOTATIONS_URL with a user name or password: the URL with its password masked. */
const credentialsInUrl = (shown: string) =>
  `ANNOTATIONS_URL=${JSON.stringify(shown)}: a user name or password in the URL is not used (the service is called with the token of SERVICE_TOKEN or JWT_SECRET) and would be printed in logs and by /readyz; remove it.`;

const otlpUrl = "an http:// or https:// URL such as http://127.0.0.1:4318 (an OpenTelemetry collector's OTLP/HTTP port)";

/** The variables of a good start: a free port, the fixture's folders and annotations service. */
const goodEnv = () => exampleEnv({ annotationsUrl: fixture.annotations.url, directories: fixture.directories, secret });

/** Starts `script` with `env`, waits for it to end, and gives its exit code and its stderr's lines. */
async function refused(script: string, env: NodeJS.ProcessEnv) {
  const child = startChild(script, null, env);
  // "close": after its stderr is read to the end.
  const [code] = (await once(child.child, "close")) as [number];
  return { code, lines: child.stderr().split("\n").slice(0, -1), stdout: child.lines() };
}

describe("npm run example:express: a bad setting", () => {
  it.each([
    ["MAX_UPLOAD_BYTES", "10XB", 'MAX_UPLOAD_BYTES="10XB": expected a size such as 10MB, 2GiB or plain bytes (1 or more).'],
    ["MAX_UPLOAD_BYTES", "-5", 'MAX_UPLOAD_BYTES="-5": expected a size such as 10MB, 2GiB or plain bytes (1 or more).'],
    ["REDIS_URL", "127.0.0.1:6379", 'REDIS_URL="127.0.0.1:6379": expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379; with its scheme: redis://127.0.0.1:6379.'],
    ["REDIS_URL", "localhost:6379", 'REDIS_URL="localhost:6379": expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379; with its scheme: redis://localhost:6379.'],
    ["REDIS_URL", "http://127.0.0.1:6379", 'REDIS_URL="http://127.0.0.1:6379": expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379.'],
    ["PORT", "abc", 'PORT="abc": expected a port number from 0 to 65535.'],
    ["PORT", "70000", 'PORT="70000": expected a port number from 0 to 65535.'],
    ["ANNOTATIONS_URL", "not-a-url", 'ANNOTATIONS_URL="not-a-url": expected an http:// or https:// URL such as http://127.0.0.1:4000.'],
    ["ANNOTATIONS_URL", "ftp://host/api", 'ANNOTATIONS_URL="ftp://host/api": expected an http:// or https:// URL such as http://127.0.0.1:4000.'],
    ["SHUTDOWN_TIMEOUT_MS", "30s", 'SHUTDOWN_TIMEOUT_MS="30s": expected a whole number of milliseconds, 0 or more.'],
    ["DETECTION_ATTEMPTS", "0", 'DETECTION_ATTEMPTS="0": expected a whole number of tries from 1 to 1000.'],
    ["LOG_LEVEL", "loud", 'LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent.'],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "not-a-url", `OTEL_EXPORTER_OTLP_ENDPOINT="not-a-url": expected ${otlpUrl}.`],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", `OTEL_EXPORTER_OTLP_ENDPOINT="localhost:4318": expected ${otlpUrl}; with its scheme: http://localhost:4318.`],
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://collector:4317", `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="grpc://collector:4317": expected ${otlpUrl}.`],
    ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", `OTEL_EXPORTER_OTLP_PROTOCOL="grpc": expected http/json or http/protobuf: traces go over OTLP/HTTP, not gRPC (the collector's port 4318, not 4317).`],
    ["OTEL_SDK_DISABLED", "yes", 'OTEL_SDK_DISABLED="yes": expected true or false.'],
    ["OTEL_BSP_SCHEDULE_DELAY", "5s", 'OTEL_BSP_SCHEDULE_DELAY="5s": expected a whole number of milliseconds, 1 or more.'],
    ["JWT_SECRET", "x", shortSecret(1)],
    ["JWT_SECRET", "a".repeat(31), shortSecret(31)],
    ["ANNOTATIONS_URL", "http://svc:annpw@127.0.0.1:4791", credentialsInUrl("http://svc:***@127.0.0.1:4791")],
    ["ANNOTATIONS_URL", "https://svc@annotations.internal/base", credentialsInUrl("https://svc@annotations.internal/base")],
    ["ANNOTATIONS_REQUEST_DEADLINE_MS", "0", 'ANNOTATIONS_REQUEST_DEADLINE_MS="0": expected a whole number of milliseconds, 1 or more.'],
  ])("%s=%s: one line naming it, exit 1", async (name, value, line) => {
    const result = await refused(server, { ...goodEnv(), [name]: value });
    expect(result).toEqual({ code: 1, lines: [line], stdout: [] });
  });

  it.each(["VIDEOS_DIR", "IMAGES_DIR"])("%s under a regular file: one line naming it, exit 1", async (variable) => {
    const file = join(fixture.root, "a-file");
    await writeFile(file, "not a folder");
    const dir = join(file, "media");
    const result = await refused(server, { ...goodEnv(), [variable]: dir });
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([`Cannot start: ${variable} (${dir}) cannot be written: it or a folder above it is a file, not a folder (ENOTDIR).`]);
  });

  it("the folders on two file systems: one line naming both variables, exit 1", async () => {
    const other = await mountSmallTmpfs(1 << 20);
    try {
      const images = join(other.path, "images");
      const onTwo = await refused(server, { ...goodEnv(), IMAGES_DIR: images });
      expect(onTwo.code).toBe(1);
      const tusDefault = join(fixture.directories.videosDir, ".media-intake-uploads");
      expect(onTwo.lines).toEqual([
        `Cannot start: IMAGES_DIR (${images}) is on another file system than TUS_UPLOADS_DIR (${tusDefault}, the default under VIDEOS_DIR): a finished upload is linked into place, never copied; put them on one volume.`,
      ]);
      const tus = join(other.path, "tus");
      const tusElsewhere = await refused(server, { ...goodEnv(), TUS_UPLOADS_DIR: tus });
      expect(tusElsewhere.code).toBe(1);
      expect(tusElsewhere.lines).toEqual([
        `Cannot start: VIDEOS_DIR (${fixture.directories.videosDir}) is on another file system than TUS_UPLOADS_DIR (${tus}): a finished upload is linked into place, never copied; put them on one volume.`,
      ]);
    } finally {
      await other.unmount();
    }
  });
});

describe("npm run example:worker: a bad setting", () => {
  it.each([
    [{ REDIS_URL: "" }, "REDIS_URL is not set: the worker needs the Redis the web processes enqueue on, and their annotations service."],
    [{ REDIS_URL: "localhost:6379" }, 'REDIS_URL="localhost:6379": expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379; with its scheme: redis://localhost:6379.'],
    [{ REDIS_URL: "redis://127.0.0.1:1", ANNOTATIONS_URL: "not-a-url" }, 'ANNOTATIONS_URL="not-a-url": expected an http:// or https:// URL such as http://127.0.0.1:4000.'],
    [{ REDIS_URL: "redis://127.0.0.1:1", WORKER_CONCURRENCY: "many" }, 'WORKER_CONCURRENCY="many": expected a whole number of jobs from 1 to 1000.'],
    [{ REDIS_URL: "redis://127.0.0.1:1", OTEL_EXPORTER_OTLP_ENDPOINT: "not-a-url" }, `OTEL_EXPORTER_OTLP_ENDPOINT="not-a-url": expected ${otlpUrl}.`],
    [{ REDIS_URL: "redis://127.0.0.1:1", SHUTDOWN_TIMEOUT_MS: "abc" }, 'SHUTDOWN_TIMEOUT_MS="abc": expected a whole number of milliseconds, 0 or more.'],
    [{ REDIS_URL: "redis://127.0.0.1:1", JWT_SECRET: "short-secret" }, shortSecret(12)],
    [{ REDIS_URL: "redis://127.0.0.1:1", ANNOTATIONS_URL: "http://svc:annpw@127.0.0.1:4791" }, credentialsInUrl("http://svc:***@127.0.0.1:4791")],
  ])("%o: one line, exit 1", async (env, line) => {
    const result = await refused(worker, { ...goodEnv(), ...env });
    expect(result).toEqual({ code: 1, lines: [line], stdout: [] });
  });
});

describe("npm run example:express: sizes with units", () => {
  it.each([
    ["1048576", 1_048_576],
    ["10MB", 10_000_000],
    ["10mb", 10_000_000],
    ["2GiB", 2 * 2 ** 30],
    ["1.5 GB", 1_500_000_000],
    ["512kib", 512 * 1024],
    ["1TB", 1e12],
  ])("MAX_UPLOAD_BYTES=%s is %d bytes", (value, bytes) => {
    expect(readServerConfig({ MAX_UPLOAD_BYTES: value }).maxUploadBytes).toBe(bytes);
  });

  it("MAX_UPLOAD_BYTES=10MB is 10,000,000 bytes: 11 MB is answered 413, a small image 200", async () => {
    const example = startChild(server, null, { ...goodEnv(), MAX_UPLOAD_BYTES: "10MB" });
    const [, url] = (await example.match(/"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/)) as RegExpMatchArray;
    const post = async (name: string, bytes: Uint8Array) => {
      const form = new FormData();
      form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
      const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
      return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
    };
    // Under 10 MiB: a limit read in binary units, or none at all, would take it.
    expect(await post("big.mp4", sampleMp4(11_000_000))).toMatchObject({ status: 413, body: { error: { code: "MEDIA_TOO_LARGE" } } });
    expect((await post("small.png", samplePng(16, 16, 1))).status).toBe(200);
    await example.kill();
  });

  it("an empty value counts as unset", async () => {
    const example = startChild(server, null, { ...goodEnv(), MAX_UPLOAD_BYTES: "", DURABILITY: "", SHUTDOWN_TIMEOUT_MS: " " });
    await example.match(/"msg":"listening on /);
    await example.kill();
  });
});

describe("docs/express-example.md", () => {
  it("names every variable config.ts reads", async () => {
    const source = await readFile(resolve(import.meta.dirname, "../examples/express/config.ts"), "utf8");
    const read = new Set([...source.matchAll(/\bread\.\w+\(\s*"([A-Z][A-Z0-9_]+)"/g)].map((match) => match[1] as string));
    expect(read.size).toBeGreaterThan(30);
    const docs = await readFile(resolve(import.meta.dirname, "../docs/express-example.md"), "utf8");
    expect([...read].filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
  });
});
