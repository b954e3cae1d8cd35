// npm run demo:cluster as a user runs it: redis-server, two web processes and two workers of the
// example on one data directory, 40 uploads with duplicates, a worker killed with SIGKILL mid-job.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "../helpers/temp-dir.ts";

interface ClusterReport {
  uploads: Array<{ file: string; web: string; http: number; id: string; answer: string; status: string; history: string; corrupt: boolean }>;
  killed?: { worker: string; id: string };
  checks: Array<{ check: string; ok: boolean; detail: string }>;
}

describe("npm run demo:cluster", () => {
  it("40 uploads and a resumable one through two web processes and two workers, one killed mid-job: one file and record per content, each ended right", async () => {
    const child = spawn(process.execPath, [resolve(import.meta.dirname, "../../examples/cluster.ts"), "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(stderr).toBe("");
    const report = JSON.parse(stdout) as ClusterReport;
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(code).toBe(0);

    expect(report.uploads).toHaveLength(41);
    const multipart = report.uploads.slice(0, 40);
    expect(new Set(multipart.map((u) => u.web))).toEqual(new Set(["web-1", "web-2"]));
    const ids = new Set(report.uploads.map((u) => u.id));
    expect(ids.size).toBe(25);
    // The resumable upload, its chunks sent to both web processes in turn, ended like the others.
    expect(report.uploads[40]).toMatchObject({ file: "field-video.mp4 (tus)", web: expect.stringMatching(/^web-1\+web-2 \(\d+ PATCHes\)$/), status: "AIProcessed", answer: expect.stringMatching(/^\d+ detections?$/) });
    for (const upload of report.uploads) {
      if (upload.corrupt) expect(upload).toMatchObject({ answer: "DETECTION_FAILED", status: "Error" });
      else expect(upload).toMatchObject({ status: "AIProcessed", answer: expect.stringMatching(/^\d+ detections?$/) });
      expect(upload.history.startsWith("New -> AIProcessing")).toBe(true);
    }
    // Duplicates went through both web processes, and got one answer.
    for (const id of ids) {
      const same = report.uploads.filter((u) => u.id === id);
      expect(new Set(same.map((u) => u.answer)).size).toBe(1);
    }
    expect(report.uploads.filter((u) => report.uploads.filter((v) => v.id === u.id).length > 1).some((u) => u.web === "web-1")).toBe(true);
    expect(Number(report.uploads[40]?.web.match(/\((\d+) PATCHes/)?.[1])).toBeGreaterThanOrEqual(6);
    // The killed worker's job went back through AIProcessing on the other worker.
    expect(report.killed).toBeDefined();
    const killedRun = report.uploads.find((u) => u.id === report.killed!.id)!;
    expect(killedRun.history.split(" -> ").filter((s) => s === "AIProcessing").length).toBeGreaterThanOrEqual(2);
  });

  it("without redis-server on PATH, says which package to install and exits 1", async () => {
    // PATH holds only a link to this Node: no redis-server there.
    const bin = await makeTempDir();
    await symlink(process.execPath, join(bin, "node"));
    const child = spawn(process.execPath, [resolve(import.meta.dirname, "../../examples/cluster.ts")], { env: { ...process.env, PATH: bin }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toContain("npm run demo:cluster needs Redis");
    expect(stderr).toContain("apt-get install redis-server");
    expect(stderr).toContain("brew install redis");
  });
});
