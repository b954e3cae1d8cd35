// A possession service of our own on 127.0.0.1, speaking the wire format of ISSUE22-API.md section 1
// (`POST /possession`, `POST /possession/<challengeId>`, `GET /detections/<jobId>`) with the
// library's core: issueChallenge, a memory challenge store (single use), answerDigest over
// fileRangeReader of real temp files, httpErrorFor's bodies. For the browser helpers' tests,
// while the real routes are built beside them.
import { timingSafeEqual } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { computeMediaId, httpErrorFor, MediaTooLargeError, resolveMediaType } from "../../src/index.ts";
import { answerDigest, createMemoryChallengeStore, fileRangeReader, issueChallenge, type RangeReader } from "../../src/possession/index.ts";
import { startServer } from "./http-server.ts";
import { makeTempDir } from "./temp-dir.ts";

/** A request the service saw: what the client sent. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

export interface PossessionWire {
  /** `<server>/possession` (set by {@link startPossessionWire}, or by a test that serves the routes itself). */
  url: string;
  /** `<server>` */
  origin: string;
  /** Serves one request (its body read here): for a server that mounts the routes beside others. */
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** The held file of a media ID: by default those of {@link hold}; a test may look in storage directories. */
  locate(mediaId: string): Promise<{ path: string; size: number; name: string } | undefined>;
  /** The tokens the service takes, and whose they are. */
  tokens: Map<string, string>;
  /** Every request, in order. */
  seen: SeenRequest[];
  /** How a verified answer is answered: 200 with the detections, or 202 with where to poll (Redis mode). */
  mode: "answer" | "queued";
  /** What each `GET /detections/<jobId>` answers, in turn (the last one again after the end). */
  polls: Array<{ status: number; body: unknown; headers?: Record<string, string> }>;
  /** The upload limit (413 above it). */
  maxBytes: number;
  /** Answers a request itself when it returns true (a fault, a stall, a forged challenge). */
  fault: ((req: IncomingMessage, res: ServerResponse, body: unknown) => boolean) | undefined;
  /** Keeps `bytes` as held content (a real file); resolves with its media ID. */
  hold(bytes: Uint8Array, name?: string): Promise<string>;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  void res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));

const refuse = (res: ServerResponse, error: unknown) => {
  const answer = httpErrorFor(error);
  json(res, answer.status, { error: { code: answer.code, message: answer.message } }, { ...answer.headers });
};

/** The refusal of every answer that does not prove possession: one body, whatever the reason. */
const notProven = (res: ServerResponse) => json(res, 403, { error: { code: "POSSESSION_NOT_PROVEN", message: "The answer does not prove possession of the content; upload the file." } });

/** The routes, not yet listening: `wire.serve` handles a request. */
export async function createPossessionWire(): Promise<PossessionWire> {
  const dir = await makeTempDir("media-intake-held-");
  const held = new Map<string, { path: string; size: number; name: string }>();
  const store = createMemoryChallengeStore();
  const wire = {} as PossessionWire;

  const handle = async (req: IncomingMessage, res: ServerResponse, body: unknown) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const userId = token === undefined ? undefined : wire.tokens.get(token);
    if (userId === undefined) return json(res, 401, { error: { code: "AUTH_TOKEN_INVALID", message: "The token is missing or invalid." } });

    if (req.method === "POST" && path === "/possession") {
      const { mediaId, size, name } = (body ?? {}) as { mediaId?: unknown; size?: unknown; name?: unknown };
      if (typeof mediaId !== "string" || !/^[0-9a-f]{16}$/.test(mediaId) || !Number.isSafeInteger(size) || typeof name !== "string") {
        return json(res, 400, { error: { code: "BAD_REQUEST", message: "Expected { mediaId, size, name }." } });
      }
      try {
        resolveMediaType(name);
        if ((size as number) > wire.maxBytes) throw new MediaTooLargeError(name, wire.maxBytes);
      } catch (error) {
        return refuse(res, error);
      }
      const { challenge, kept } = issueChallenge({ userId, mediaId, size: size as number });
      await store.put(kept);
      return json(res, 200, { challenge });
    }

    const answering = /^\/possession\/([A-Za-z0-9_-]+)$/.exec(path);
    if (req.method === "POST" && answering) {
      const kept = await store.take(answering[1] as string);
      const digest = (body as { digest?: unknown } | undefined)?.digest;
      if (!kept || kept.userId !== userId || typeof digest !== "string") return notProven(res);
      const file = await wire.locate(kept.mediaId);
      const holds = file !== undefined && file.size === kept.size;
      const handle = holds ? await open(file.path, "r") : undefined;
      try {
        // Content not held: the same hashing over zeros, and the same refusal.
        const zeros: RangeReader = async (_, length) => new Uint8Array(length);
        const expected = Buffer.from(await answerDigest(kept, handle ? fileRangeReader(handle) : zeros), "base64url");
        const given = Buffer.from(digest, "base64url");
        if (!holds || given.length !== expected.length || !timingSafeEqual(given, expected)) return notProven(res);
      } finally {
        await handle?.close();
      }
      const media = { id: kept.mediaId, name: file.name, userId, mediaType: 1, mediaStatus: 1, created: false, fileCreated: false, size: kept.size };
      if (wire.mode === "answer") return json(res, 200, { media: { ...media, mediaStatus: 3 }, detections: [{ label: "held" }] });
      const poll = `/detections/${kept.mediaId}`;
      return json(res, 202, { media, detection: { jobId: kept.mediaId, state: "waiting", poll } }, { location: poll });
    }

    if (req.method === "GET" && path.startsWith("/detections/")) {
      const next = wire.polls.length > 1 ? wire.polls.shift() : wire.polls[0];
      if (!next) return json(res, 404, { error: { code: "NOT_FOUND", message: "No such detection job." } });
      return json(res, next.status, next.body, next.headers);
    }
    json(res, 404, { error: { code: "NOT_FOUND", message: `No route ${req.method} ${path}.` } });
  };

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const path = new URL(req.url ?? "/", "http://x").pathname;
      wire.seen.push({ method: req.method ?? "", path, authorization: req.headers.authorization, body });
      if (wire.fault?.(req, res, body)) return;
      handle(req, res, body).catch((error: unknown) => json(res, 500, { error: { code: "INTERNAL", message: String(error) } }));
    });
  };

  Object.assign(wire, {
    url: "",
    origin: "",
    serve,
    locate: async (mediaId: string) => held.get(mediaId),
    tokens: new Map(),
    seen: [],
    mode: "answer",
    polls: [],
    maxBytes: 64 * 2 ** 20,
    fault: undefined,
    async hold(bytes: Uint8Array, name = "held.mp4") {
      const path = join(dir, `${held.size}-${name}`);
      await writeFile(path, bytes);
      const id = await computeMediaId(path);
      held.set(id, { path, size: bytes.byteLength, name });
      return id;
    },
    close: async () => {},
  } satisfies Partial<PossessionWire>);
  return wire;
}

/** The routes on a server of their own. */
export async function startPossessionWire(): Promise<PossessionWire> {
  const wire = await createPossessionWire();
  const started = await startServer(wire.serve);
  return Object.assign(wire, { url: `${started.url}/possession`, origin: started.url, close: started.close });
}
