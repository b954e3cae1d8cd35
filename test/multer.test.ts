import { writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { createAnnotationsClient, type IntakenMedia } from "../src/index.ts";
import { mediaIntakeStorage } from "../src/multer/index.ts";
import { makeTempDir } from "./helpers/temp-dir.ts";

describe("mediaIntakeStorage._removeFile", () => {
  const engine = mediaIntakeStorage({
    client: createAnnotationsClient({ baseUrl: "http://127.0.0.1:1" }),
    directories: { videosDir: "/tmp/v", imagesDir: "/tmp/i" },
  });
  const remove = (file: { path: string; media: IntakenMedia }) =>
    new Promise<Error | null>((resolve) => engine._removeFile({} as IncomingMessage, file, resolve));

  it("keeps the media when a later part of the request fails: its record names the file", async () => {
    const dir = await makeTempDir();
    const mine = join(dir, "mine.png");
    await writeFile(mine, "x");
    expect(await remove({ path: mine, media: { fileCreated: true } as IntakenMedia })).toBeNull();
    expect((await stat(mine)).isFile()).toBe(true);
  });
});

describe("mediaIntakeStorage with many files", () => {
  it("takes 12 files in one request without piling listeners on the request", async () => {
    const { default: express } = await import("express");
    const { default: multer } = await import("multer");
    const { samplePng } = await import("../examples/sample-media.ts");
    const { startFaultFixture } = await import("./helpers/fixture.ts");
    const { directories, service, token } = await startFaultFixture(() => undefined);
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const upload = multer({ storage: mediaIntakeStorage({ client: createAnnotationsClient({ baseUrl: service.url, token: "service" }), directories }) });
      const app = express();
      app.post("/many", upload.array("files", 20), (req, res) => {
        const files = req.files as Express.Multer.File[];
        res.json(files.map((file) => file.media?.id));
      });
      const server = app.listen(0, "127.0.0.1");
      await new Promise((r) => server.once("listening", r));
      const form = new FormData();
      for (let i = 0; i < 12; i++) form.append("files", new Blob([samplePng(10, 10, i) as Uint8Array<ArrayBuffer>]), `f${i}.png`);
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/many`, { method: "POST", body: form, headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      expect(new Set((await response.json()) as string[]).size).toBe(12);
      server.close();
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await service.close();
    }
  });
});
