// followDetection (media-intake/browser) against a real HTTP service on loopback whose
// `GET /detections/<jobId>` answers as scripted: polled until completed or failed, a 202's Location
// followed, refusals as UploadRequestErrors in plain text, stopped by its signal.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DetectionStatusUnknownError, followDetection, type UploadAnswer, UploadRequestError } from "../src/browser/index.ts";
import { type PossessionWire, startPossessionWire } from "./helpers/possession-wire.ts";

const token = "tok-alice-5d6e7f8a9b";
const media = { id: "6a9b7ce7844aa871", mediaStatus: 1 };
const waiting: UploadAnswer = { media, detection: { jobId: media.id, state: "waiting", poll: `/detections/${media.id}` } };
const state = (name: string, extra: Record<string, unknown> = {}) => ({ status: 200, body: { media, detection: { jobId: media.id, state: name, ...extra } } });

let wire: PossessionWire;
beforeEach(async () => {
  wire = await startPossessionWire();
  wire.tokens.set(token, "alice");
});
afterEach(() => wire.close());

const polled = () => wire.seen.map(({ method, path }) => `${method} ${path}`);

describe("followDetection", () => {
  it("polls the answer's URL with the token until the run completes, and resolves with the last answer", async () => {
    wire.polls = [state("waiting"), state("active"), state("completed", { detections: [{ label: "car" }] })];
    const updates: unknown[] = [];
    const final = await followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1, onUpdate: (body) => updates.push(body.detection?.state) });
    expect(final).toEqual({ media, detection: { jobId: media.id, state: "completed", detections: [{ label: "car" }] } });
    expect(updates).toEqual(["waiting", "active", "completed"]);
    expect(polled()).toEqual(Array(3).fill(`GET /detections/${media.id}`));
    expect(wire.seen.every((request) => request.authorization === `Bearer ${token}`)).toBe(true);
  });

  it("resolves with a failed run too, its error in the answer", async () => {
    wire.polls = [state("failed", { error: { code: "DETECTION_FAILED", message: "corrupt" } })];
    expect(await followDetection(waiting, { token, baseUrl: `${wire.origin}/files`, intervalMs: 1 })).toMatchObject({ detection: { state: "failed", error: { code: "DETECTION_FAILED" } } });
  });

  it("resolves at once, asking nothing, with an answer that has no poll URL or is final already", async () => {
    const done = { media, detections: [{ label: "cat" }] };
    expect(await followDetection(done, { token })).toBe(done);
    const final = { media, detection: { state: "completed", poll: "/detections/x" } };
    expect(await followDetection(final, { token })).toBe(final);
    expect(wire.seen).toEqual([]);
  });

  it("follows a 202's Location to the next poll", async () => {
    wire.polls = [
      { status: 202, body: { media, detection: { state: "active" } }, headers: { location: "/detections/moved" } },
      state("completed", { detections: [] }),
    ];
    await followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1 });
    expect(polled()).toEqual([`GET /detections/${media.id}`, "GET /detections/moved"]);
  });

  it.each([
    [404, { error: { code: "NOT_FOUND", message: "No detection job 6a9b7ce7844aa871 (never queued, or its result expired)." } }, "Not found. No detection job 6a9b7ce7844aa871 (never queued, or its result expired)."],
    [401, { error: { code: "AUTH_TOKEN_INVALID", message: "Reading the user ID from the bearer token: the token has expired" } }, "Not signed in: the token has expired; sign in again."],
    [401, { error: { code: "AUTH_TOKEN_INVALID", message: "Reading the user ID from the bearer token: bad signature" } }, "Not signed in, or the token was refused: sign in again."],
  ])("a poll answered %i is an UploadRequestError in plain text", async (status, body, text) => {
    wire.polls = [state("active"), { status, body }];
    const error = await followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UploadRequestError);
    expect(error).toMatchObject({ status, text, serverCode: body.error.code });
    expect(wire.seen).toHaveLength(2);
  });

  it("rides out an outage: no answer, a 502, a 503 with Retry-After (waited), then goes on to the end", async () => {
    let dropped = 0;
    wire.fault = (req) => {
      if (!req.url?.startsWith("/detections/") || dropped >= 2) return false;
      dropped += 1;
      req.socket.destroy();
      return true;
    };
    wire.polls = [
      { status: 502, body: "<html>bad gateway</html>" },
      { status: 503, body: { error: { code: "JOURNAL_UNAVAILABLE", message: "Poll again later." } }, headers: { "retry-after": "1" } },
      state("completed", { detections: [{ label: "car" }] }),
    ];
    const started = performance.now();
    const final = await followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1, retryDelays: [1, 1, 1, 1] });
    expect(final.detection).toMatchObject({ state: "completed", detections: [{ label: "car" }] });
    expect(wire.seen).toHaveLength(5);
    // The Retry-After of the 503 (1 s) was waited, though its retry delay was 1 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
  });

  it("an outage longer than its retries: DetectionStatusUnknownError, the stored answer and its absolute poll URL in it, to go on later", async () => {
    wire.polls = [state("active"), { status: 503, body: {} }];
    const error = await followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1, retryDelays: [1, 1] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DetectionStatusUnknownError);
    expect(error).toBeInstanceOf(UploadRequestError);
    expect(error).toMatchObject({ status: 503, text: "The media are stored; the state of their detection is not known yet (The service is unavailable, try again later)." });
    expect((error as DetectionStatusUnknownError).answer).toMatchObject({ media, detection: { state: "active", poll: `${wire.origin}/detections/${media.id}` } });
    expect(wire.seen).toHaveLength(4);
    wire.polls = [state("completed", { detections: [] })];
    expect(await followDetection((error as DetectionStatusUnknownError).answer, { token, intervalMs: 1 })).toMatchObject({ detection: { state: "completed" } });
  });

  it("its signal stops a wait for a Retry-After at once", async () => {
    wire.polls = [{ status: 503, body: {}, headers: { "retry-after": "60" } }];
    const controller = new AbortController();
    const reason = new Error("row removed");
    let polledOnce!: () => void;
    const polled = new Promise<void>((resolve) => (polledOnce = resolve));
    wire.fault = () => (polledOnce(), false);
    const pending = followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1, signal: controller.signal });
    await polled;
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(wire.seen).toHaveLength(1);
  });

  it("an answer without a state ends the polling with an error (it would never end)", async () => {
    wire.polls = [{ status: 200, body: { id: media.id, mediaStatus: 2 } }];
    await expect(followDetection(waiting, { token, baseUrl: wire.origin, intervalMs: 1 })).rejects.toMatchObject({
      status: 200,
      text: "The service answered the poll without the state of the detection; try again later.",
    });
  });

  it("stops when its signal aborts: rejects with the reason, polls no more", async () => {
    wire.polls = [state("active")];
    const controller = new AbortController();
    const reason = new Error("the row was removed");
    let polls = 0;
    const pending = followDetection(waiting, {
      token,
      baseUrl: wire.origin,
      intervalMs: 1,
      signal: controller.signal,
      onUpdate: () => {
        if (++polls === 2) controller.abort(reason);
      },
    });
    await expect(pending).rejects.toBe(reason);
    expect(wire.seen).toHaveLength(2);
    await expect(followDetection(waiting, { token, baseUrl: wire.origin, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(wire.seen).toHaveLength(2);
  });

  it("refuses a relative poll URL with no page to resolve it against, and unknown options", async () => {
    await expect(followDetection(waiting, { token })).rejects.toThrow(/pass `baseUrl`/);
    await expect(followDetection(waiting, { token, every: 5 } as never)).rejects.toThrow(/unknown option "every"/);
  });
});
