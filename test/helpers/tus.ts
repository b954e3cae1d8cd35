// What the tus endpoint's tests (test/tus-{uploads,refusals,access,faults}.test.ts) start from:
// a fault fixture for alice (helpers/fixture.ts), a tus endpoint on loopback whose finish runs
// detection as a host starts it, a fault a test can put in front of the endpoint, uploads with
// tus-js-client (the reference client) and plain tus requests for what it never sends.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readdir } from "node:fs/promises";
import { Upload } from "tus-js-client";
import { afterEach, beforeEach, expect } from "vitest";
import { trackMediaProcessing } from "../../src/index.ts";
import { createTusIntake, type TusIntake } from "../../src/tus/index.ts";
import { type FaultFixture, signToken, useFaultFixture } from "./fixture.ts";
import { startServer } from "./http-server.ts";
import { filesUnder } from "./temp-dir.ts";

export const secret = "k".repeat(32);
export const auth = { verify: { secret } };
export const MiB = 2 ** 20;

/** The final response of an upload by tus-js-client. */
export interface Finished {
  uploadUrl: string;
  status: number;
  body: { media?: Record<string, unknown>; error?: { code: string } };
  mediaId: string | null;
}

export interface TusUploadOptions {
  chunkSize?: number;
  token?: string | null;
  uploadUrl?: string;
  deferred?: boolean;
  withCreation?: boolean;
  retryDelays?: number[];
  onUrl?: (url: string) => void;
}

/** What each test of a file that calls {@link useTusServer} finds, fresh for each test. */
export interface TusServer {
  /** Alice's fault fixture: the storage directories, the fake annotations service, her token. */
  fixture: FaultFixture;
  /** The endpoint's intake (the one {@link startTus} made last). */
  tus: TusIntake;
  /** The endpoint's URL, `<server>/files`. */
  endpoint: string;
  /** A test's fault, run before the intake sees a request. Returns true when it answered itself. */
  fault: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** Starts an endpoint (another after {@link closeServer}), with these options over the usual ones. */
  startTus(options?: Partial<Parameters<typeof createTusIntake>[0]>): Promise<void>;
  /** Closes the endpoint's HTTP server. */
  closeServer(): Promise<void>;
  /** Uploads with tus-js-client; resolves with the final response, rejects with tus-js-client's error. */
  tusUpload(bytes: Buffer, name: string, options?: TusUploadOptions): Promise<Finished>;
  /** A plain tus request of ours, for what tus-js-client never sends. */
  tusRequest(url: string, method: string, bearer: string, headers?: Record<string, string>, body?: Buffer): Promise<Response>;
  /** An upload created by tus-js-client whose first PATCH was cut at once: its URL, nothing stored. */
  createdOnly(bytes: Buffer, name: string): Promise<string>;
  /** The media in the storage directories (not the partial uploads, nor the journal). */
  stored(): Promise<string[]>;
  /** Partial uploads and their metadata, not the markers of finished ones. */
  partials(): Promise<string[]>;
  /** The record's status, once detection has had its say. */
  statusOf(id: string): unknown;
}

/**
 * Gives every test of the calling file alice's fault fixture and a tus endpoint started before
 * each test (its fault cleared), closed after each test with its intake.
 */
export function useTusServer(): TusServer {
  const fixture = useFaultFixture({ sub: "alice", secret });
  let closeServer: () => Promise<void>;
  const server: TusServer = {
    fixture,
    tus: undefined as unknown as TusIntake,
    endpoint: "",
    fault: undefined,
    async startTus(options = {}) {
      const client = fixture.client({ retry: false });
      // Detection as a host starts it: the finish waits for the whole run here (the detector is instant).
      const detection = trackMediaProcessing(async () => ["detected"], { client, directories: fixture.directories });
      server.tus = createTusIntake({
        directories: fixture.directories,
        client,
        auth,
        sweepIntervalMs: 0,
        onMediaIntaken: async (media, { token: caller }) => ({ detections: await detection.with(caller ? { token: caller } : {})(media) }),
        ...options,
      });
      const started = await startServer((req, res) => {
        if (server.fault?.(req, res)) return;
        void server.tus.handle(req, res);
      });
      server.endpoint = `${started.url}/files`;
      closeServer = started.close;
    },
    closeServer: () => closeServer(),
    tusUpload(bytes, name, options = {}) {
      return new Promise<Finished>((resolve, reject) => {
        const upload = new Upload(bytes, {
          endpoint: server.endpoint,
          chunkSize: options.chunkSize ?? 4 * MiB,
          retryDelays: options.retryDelays ?? [0, 50, 100, 200],
          metadata: { filename: name, filetype: "application/octet-stream" },
          headers: options.token === null ? {} : { authorization: `Bearer ${options.token ?? fixture.token}` },
          ...(options.uploadUrl ? { uploadUrl: options.uploadUrl } : {}),
          ...(options.deferred ? { uploadLengthDeferred: true } : {}),
          ...(options.withCreation ? { uploadDataDuringCreation: true } : {}),
          removeFingerprintOnSuccess: true,
          onUploadUrlAvailable: () => options.onUrl?.(upload.url ?? ""),
          onSuccess: ({ lastResponse }) => {
            const text = lastResponse.getBody() as string | undefined;
            resolve({ uploadUrl: upload.url ?? "", status: lastResponse.getStatus(), body: text ? JSON.parse(text) : {}, mediaId: lastResponse.getHeader("Media-Id") ?? null });
          },
          onError: reject,
        });
        upload.start();
      });
    },
    tusRequest: (url, method, bearer, headers = {}, body) =>
      fetch(url, { method, headers: { "tus-resumable": "1.0.0", authorization: `Bearer ${bearer}`, ...headers }, ...(body ? { body: new Uint8Array(body) } : {}) }),
    async createdOnly(bytes, name) {
      let url = "";
      server.fault = (req, res) => {
        if (req.method !== "PATCH") return false;
        res.socket?.destroy();
        return true;
      };
      await server.tusUpload(bytes, name, { retryDelays: [], onUrl: (u) => (url = u) }).catch(() => {});
      server.fault = undefined;
      expect(url).toMatch(/\/files\/[0-9a-f]{32}$/);
      return url;
    },
    stored: async () => (await filesUnder(fixture.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path)),
    partials: async () => (await readdir(server.tus.uploadsDir)).filter((name) => !name.endsWith(".media")),
    statusOf: (id) => fixture.fake.records.get(id)?.mediaStatus,
  };
  beforeEach(async () => {
    server.fault = undefined;
    await server.startTus();
  });
  afterEach(async () => {
    await server.closeServer();
    await server.tus.close();
  });
  return server;
}

/** The status of a failed tus-js-client upload, and the JSON body our server answered. */
export function failure(error: unknown): { status: number | undefined; code: string | undefined } {
  const response = (error as { originalResponse?: { getStatus(): number; getBody(): string } }).originalResponse;
  const body = response?.getBody();
  return { status: response?.getStatus(), code: body ? (JSON.parse(body) as { error?: { code: string } }).error?.code : undefined };
}

/** A token of another user (or of alice, expiring at `exp`, in seconds). */
export const tokenFor = (sub: string, exp: number | string = "5m") => signToken(sub, secret, exp);
