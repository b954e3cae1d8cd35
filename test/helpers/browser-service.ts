// The service media-intake/browser's upload helpers talk to, for real, on one loopback origin: the
// library's tus endpoint at /files (createTusIntake, the dev annotations server behind it, real
// storage folders in a temp dir), and the possession routes and detection polls of
// helpers/possession-wire.ts beside it, its held files being the ones the tus endpoint stored.
import { readdir, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import { createAnnotationsClient } from "../../src/index.ts";
import type { TusPreviousUpload, TusUrlStorage } from "../../src/browser/index.ts";
import { createTusIntake, type TusIntake } from "../../src/tus/index.ts";
import { type DevFixture, useDevFixture } from "./fixture.ts";
import { startServer } from "./http-server.ts";
import { createPossessionWire, type PossessionWire, type SeenRequest } from "./possession-wire.ts";
import { filesUnder } from "./temp-dir.ts";

export const secret = "b".repeat(32);
export const MiB = 2 ** 20;

export interface BrowserService {
  dev: DevFixture;
  /** `<origin>/files` */
  endpoint: string;
  origin: string;
  tus: TusIntake;
  wire: PossessionWire;
  /** The tus requests, in order: method, path, Upload-Offset. */
  tusSeen: Array<{ method: string; path: string; offset: string | undefined; metadata: string | undefined }>;
  /** A test's fault in front of the tus endpoint: answers itself when it returns true. */
  fault: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** Restarts the tus endpoint with these options over the usual ones. */
  restartTus(options?: Partial<Parameters<typeof createTusIntake>[0]>): Promise<void>;
  /** The media files stored (not the partial uploads). */
  stored(): Promise<string[]>;
  /** The partial uploads and their metadata (not the markers of finished ones). */
  partials(): Promise<string[]>;
  /** The upload's offset at the server (a HEAD with alice's token), or its status when it has none. */
  offsetOf(uploadUrl: string): Promise<number | string>;
}

/** A tus-js-client URL storage in memory: what `localStorage` keeps across reloads of a page. */
export function memoryUrlStorage(): TusUrlStorage & { entries: Map<string, { fingerprint: string; upload: TusPreviousUpload }> } {
  const entries = new Map<string, { fingerprint: string; upload: TusPreviousUpload }>();
  let next = 0;
  const all = (fingerprint?: string) => [...entries].filter(([, entry]) => fingerprint === undefined || entry.fingerprint === fingerprint).map(([key, entry]) => ({ ...entry.upload, urlStorageKey: key }));
  return {
    entries,
    findAllUploads: async () => all(),
    findUploadsByFingerprint: async (fingerprint) => all(fingerprint),
    removeUpload: async (key) => void entries.delete(key),
    addUpload: async (fingerprint, upload) => {
      const key = `tus::${fingerprint}::${next++}`;
      entries.set(key, { fingerprint, upload });
      return key;
    },
  };
}

/** Gives each test of the calling file a fresh {@link BrowserService}, closed after it. */
export function useBrowserService(): BrowserService {
  const dev = useDevFixture({ secret, sub: "alice" });
  const service = { dev, tusSeen: [], fault: undefined } as unknown as BrowserService;
  let close = async () => {};
  const startTus = (options: Partial<Parameters<typeof createTusIntake>[0]> = {}) => {
    service.tus = createTusIntake({
      directories: dev.directories,
      client: createAnnotationsClient({ baseUrl: dev.annotations.url, token: dev.serviceToken }),
      auth: { verify: { secret } },
      sweepIntervalMs: 0,
      // As the example's local mode answers a finish: where to follow detection.
      onMediaIntaken: (media) => ({ detection: { jobId: media.id, state: "waiting", poll: `/detections/${media.id}` } }),
      ...options,
    });
  };
  beforeEach(async () => {
    service.tusSeen = [];
    service.fault = undefined;
    service.wire = await createPossessionWire();
    service.wire.tokens.set(dev.token, "alice");
    // The possession service holds what the tus endpoint stored: `<folder>/<id>.<ext>`.
    service.wire.locate = async (mediaId) => {
      for (const folder of [dev.directories.videosDir, dev.directories.imagesDir]) {
        const name = (await readdir(folder).catch(() => [] as string[])).find((file) => file.startsWith(`${mediaId}.`));
        if (name) return { path: join(folder, name), size: (await stat(join(folder, name))).size, name };
      }
      return undefined;
    };
    startTus();
    const started = await startServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (path !== "/files" && !path.startsWith("/files/")) return service.wire.serve(req, res);
      service.tusSeen.push({ method: req.method ?? "", path, offset: req.headers["upload-offset"] as string | undefined, metadata: req.headers["upload-metadata"] as string | undefined });
      if (service.fault?.(req, res)) return;
      void service.tus.handle(req, res);
    });
    Object.assign(service, { origin: started.url, endpoint: `${started.url}/files` });
    service.wire.url = `${started.url}/possession`;
    service.wire.origin = started.url;
    close = started.close;
  });
  afterEach(async () => {
    await close();
    await service.tus.close();
  });
  service.restartTus = async (options) => {
    await service.tus.close();
    startTus(options);
  };
  service.stored = async () => (await filesUnder(dev.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path));
  service.partials = async () => (await readdir(service.tus.uploadsDir)).filter((name) => !name.endsWith(".media"));
  service.offsetOf = async (uploadUrl) => {
    const head = await fetch(uploadUrl, { method: "HEAD", headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${dev.token}` } });
    return head.ok ? Number(head.headers.get("upload-offset")) : head.status;
  };
  return service;
}

/** The tus requests as `METHOD offset` lines (`POST`, `PATCH 0`, `HEAD`), to read a flow at a glance. */
export const flow = (seen: SeenRequest[] | BrowserService["tusSeen"]) =>
  seen.map((request) => ("offset" in request && request.offset !== undefined ? `${request.method} ${request.offset}` : request.method));
