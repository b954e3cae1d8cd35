// The contract of docs/contract.md "Annotations service API" as the client sees it. It runs against the
// msw handlers and against real servers on loopback, so the mock cannot drift from the wire.
import { describe, expect, it } from "vitest";
import {
  AnnotationsAuthError,
  AnnotationsHttpError,
  type AnnotationsClient,
  AnnotationsRouteMissingError,
  createAnnotationsClient,
  httpErrorFor,
  MediaConflictError,
  MediaNotFoundError,
  MediaStatus,
  MediaType,
} from "../../src/index.ts";

export interface ContractTarget {
  baseUrl: string;
  /** A token the target accepts. */
  token: string;
  /** A token the target refuses. */
  badToken: string;
}

let counter = 0;
/** A fresh, valid media ID per call, so targets that keep state between tests still work. */
export function freshId(): string {
  counter += 1;
  return (BigInt(Date.now()) * 1000n + BigInt(counter)).toString(16).padStart(16, "0").slice(-16);
}

export function describeMediaApiContract(name: string, target: () => ContractTarget): void {
  describe(`Media API contract: ${name}`, () => {
    const client = (): AnnotationsClient => createAnnotationsClient({ baseUrl: target().baseUrl, retry: { retries: 1, baseDelayMs: 1 } });
    const record = (id = freshId()) => ({
      id,
      name: "clip.MP4",
      path: `/data/videos/${id}.mp4`,
      mediaType: MediaType.Video,
      userId: "user-42",
    });

    it("creates a record with status New and reads it back", async () => {
      const input = record();
      const created = await client().media.create(input, { token: target().token });
      expect(created).toEqual({ ...input, mediaStatus: MediaStatus.New });
      expect(await client().media.get(input.id.toUpperCase(), { token: target().token })).toEqual(created);
    });

    it("moves the status and reads the new one", async () => {
      const input = record();
      const api = client();
      const { token } = target();
      await api.media.create(input, { token });
      await api.media.updateStatus(input.id, MediaStatus.AIProcessing, { token });
      expect((await api.media.get(input.id, { token })).mediaStatus).toBe(MediaStatus.AIProcessing);
      await api.media.updateStatus(input.id, MediaStatus.AIProcessed, { token });
      expect((await api.media.get(input.id, { token })).mediaStatus).toBe(MediaStatus.AIProcessed);
    });

    it("answers 409 for a second create of the same Id, and createOrGet returns the existing record", async () => {
      const input = record();
      const { token } = target();
      await client().media.create(input, { token });
      const error = await client().media.create({ ...input, name: "other.mp4" }, { token }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaConflictError);
      expect((error as MediaConflictError).message).toMatch(new RegExp(`^POST /api/media: 409 Conflict`));
      const again = await client().media.createOrGet({ ...input, name: "other.mp4" }, { token });
      expect(again).toEqual({ created: false, record: { ...input, mediaStatus: MediaStatus.New } });
    });

    it("answers 404 for an unknown record, on read and on status update", async () => {
      const id = freshId();
      const { token } = target();
      await expect(client().media.get(id, { token })).rejects.toBeInstanceOf(MediaNotFoundError);
      const error = await client().media.updateStatus(id, MediaStatus.AIProcessing, { token }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaNotFoundError);
      expect(error).toMatchObject({ method: "PUT", path: `/api/media/${id}/status`, status: 404 });
    });

    it("answers a path that is not the contract's route (a base URL holding /api/media) with a 404 the client reads as a missing route, never 'no such media'", async () => {
      const { token } = target();
      const input = record();
      await client().media.create(input, { token });
      const wrong = createAnnotationsClient({ baseUrl: `${target().baseUrl}/api/media`, retry: false });
      const calls = [wrong.media.get(input.id, { token }), wrong.media.updateStatus(input.id, MediaStatus.AIProcessing, { token }), wrong.media.create(record(), { token })];
      for (const error of await Promise.all(calls.map((call) => call.catch((e: unknown) => e)))) {
        expect(error).toBeInstanceOf(AnnotationsRouteMissingError);
        expect(error).toMatchObject({ status: 404, code: "ANNOTATIONS_ROUTE_MISSING" });
        expect(httpErrorFor(error)).toMatchObject({ status: 503, code: "ANNOTATIONS_ROUTE_MISSING" });
      }
      // The record is there, untouched.
      expect(await client().media.get(input.id, { token })).toMatchObject({ id: input.id, mediaStatus: MediaStatus.New });
    });

    it("answers 401 to a refused token, and the error never holds it", async () => {
      const { badToken } = target();
      const error = await client().media.get(freshId(), { token: badToken }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsAuthError);
      expect((error as AnnotationsAuthError).status).toBe(401);
      expect(JSON.stringify({ ...(error as object), message: (error as Error).message, stack: (error as Error).stack })).not.toContain(badToken);
    });

    it("puts the problem body's text in the error of a refused record", async () => {
      const bad = { ...record(), mediaType: 7 as MediaType };
      const error = await client().media.create(bad, { token: target().token }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AnnotationsHttpError);
      expect(error).toMatchObject({ status: 400 });
      expect((error as Error).message).toMatch(/^POST \/api\/media: 400 Bad Request — .*MediaType/);
    });
  });
}
