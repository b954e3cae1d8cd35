// The framework recipes, each driven over HTTP on loopback: a real upload through each ends as a
// stored file and a record; a refused one answers the same JSON errors as the Express example.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterEach, describe, expect, it } from "vitest";
import { createFastifyApp } from "../examples/recipes/fastify.ts";
import { createHonoApp } from "../examples/recipes/hono.ts";
import { samplePng } from "../examples/sample-media.ts";
import { computeMediaId } from "../src/index.ts";
import { useFaultFixture } from "./helpers/fixture.ts";
import { filesUnder } from "./helpers/temp-dir.ts";
let closeApp: () => Promise<unknown>;

const fixture = useFaultFixture({ sub: "alice" });
afterEach(() => closeApp());

const config = () => ({ client: fixture.client({ token: "service" }), directories: fixture.directories, auth: {}, maxBytes: 100_000 });
const stored = async () => (await filesUnder(fixture.root)).filter((path) => /^(videos|images)\/[0-9a-f]/.test(path));

describe("the Fastify recipe", () => {
  it("streams a multipart upload into a record, with its UTF-8 name, then detection", async () => {
    const app = await createFastifyApp({ ...config(), detect: async () => [{ label: "car" }] });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    closeApp = () => app.close();
    const png = samplePng(20, 20, 1);
    const form = new FormData();
    form.append("file", new Blob([png as Uint8Array<ArrayBuffer>]), "поле 🚗.png");
    const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
    expect(response.status).toBe(200);
    const id = await computeMediaId(png);
    expect(await response.json()).toMatchObject({ media: { id, name: "поле 🚗.png", userId: "alice" }, detections: [{ label: "car" }] });
    expect(fixture.fake.records.get(id)).toMatchObject({ mediaStatus: 3 });
    expect(await stored()).toEqual([`images/${id}.png`]);
  });

  it("answers a too-large upload 413 MEDIA_TOO_LARGE, keeping nothing", async () => {
    const app = await createFastifyApp({ ...config(), detect: async () => [] });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    closeApp = () => app.close();
    const form = new FormData();
    // A real PNG head, padded past the limit: only the size can refuse it.
    form.append("file", new Blob([Buffer.concat([samplePng(), Buffer.alloc(300_000)]) as Uint8Array<ArrayBuffer>]), "big.png");
    const response = await fetch(`${url}/detect`, { method: "POST", body: form, headers: { authorization: `Bearer ${fixture.token}` } });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "MEDIA_TOO_LARGE" } });
    expect(await stored()).toEqual([]);
  });
});

describe("the web-standard handler, in Hono", () => {
  async function start() {
    const server = serve({ fetch: createHonoApp(config()).fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((resolve) => server.once("listening", resolve));
    closeApp = () => new Promise((resolve) => server.close(resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("streams a raw body into a record: 201, then 200 for the same bytes again", async () => {
    const url = await start();
    const png = samplePng(24, 24, 2);
    const post = () => fetch(`${url}/media?name=${encodeURIComponent("знімок.png")}`, { method: "POST", body: new Uint8Array(png), headers: { authorization: `Bearer ${fixture.token}` } });
    const first = await post();
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ media: { name: "знімок.png", userId: "alice", fileCreated: true } });
    expect((await post()).status).toBe(200);
    expect(await stored()).toEqual([`images/${await computeMediaId(png)}.png`]);
  });

  it("answers 415 to an unsupported name and 401 without a token, keeping nothing", async () => {
    const url = await start();
    const unsupported = await fetch(`${url}/media?name=notes.txt`, { method: "POST", body: "hello", headers: { authorization: `Bearer ${fixture.token}` } });
    expect(unsupported.status).toBe(415);
    expect(await unsupported.json()).toMatchObject({ error: { code: "UNSUPPORTED_MEDIA_TYPE" } });
    const anonymous = await fetch(`${url}/media?name=a.png`, { method: "POST", body: new Uint8Array(samplePng()) });
    expect(anonymous.status).toBe(401);
    expect(await stored()).toEqual([]);
  });
});
