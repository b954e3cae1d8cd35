import type { Readable } from "node:stream";
import { expectTypeOf, test } from "vitest";
import { computeMediaId, computeMediaIdSync, type ComputeMediaIdOptions, normalizeMediaId } from "../src/index.ts";

test("computeMediaId resolves to a string and needs a size for streams", () => {
  expectTypeOf(computeMediaId).returns.resolves.toEqualTypeOf<string>();
  expectTypeOf(computeMediaId).toBeCallableWith("/x.mp4");
  expectTypeOf(computeMediaId).toBeCallableWith(new Uint8Array(1), { signal: AbortSignal.timeout(1) });
  expectTypeOf(computeMediaId).toBeCallableWith({} as Readable, { size: 1 });
  // @ts-expect-error a stream without its size
  void computeMediaId({} as Readable);
  expectTypeOf<ComputeMediaIdOptions["size"]>().toEqualTypeOf<number | undefined>();
});

test("the sync ID and the normaliser return strings", () => {
  expectTypeOf(computeMediaIdSync).toBeCallableWith(3);
  expectTypeOf(computeMediaIdSync).returns.toEqualTypeOf<string>();
  expectTypeOf(normalizeMediaId).returns.toEqualTypeOf<string>();
});

test("storeMedia resolves to a stored record with a MediaType", async () => {
  const { storeMedia, MediaType } = await import("../src/index.ts");
  type Stored = Awaited<ReturnType<typeof storeMedia>>;
  expectTypeOf<Stored["mediaType"]>().toEqualTypeOf<1 | 2>();
  expectTypeOf<Stored["created"]>().toEqualTypeOf<boolean>();
  expectTypeOf(MediaType.Video).toEqualTypeOf<1>();
});

test("MediaRecord's schema (media-intake/schema) parses to the core's MediaRecord type, and the client is typed", async () => {
  const { createAnnotationsClient } = await import("../src/index.ts");
  const { MediaRecord } = await import("../src/schema/index.ts");
  type Record = import("../src/index.ts").MediaRecord;
  expectTypeOf<Record>().toEqualTypeOf<{ id: string; name: string; path: string; mediaType: 1 | 2; mediaStatus: number; userId: string }>();
  expectTypeOf(MediaRecord.parse).returns.toEqualTypeOf<Record>();
  const client = createAnnotationsClient({ baseUrl: "http://annotations:8080" });
  expectTypeOf(client.media.get).returns.resolves.toEqualTypeOf<Record>();
  expectTypeOf(client.media.createOrGet).returns.resolves.toEqualTypeOf<{ record: Record; created: boolean }>();
});

test("a tracked function keeps the detector's arguments and result, per call too", async () => {
  const { trackMediaProcessing, createAnnotationsClient } = await import("../src/index.ts");
  const client = createAnnotationsClient({ baseUrl: "http://annotations:8080" });
  const detect = trackMediaProcessing(async (_media, _context, threshold: number) => ({ boxes: threshold }), { client });
  expectTypeOf(detect).toBeCallableWith("00000000000000ff", 0.5);
  expectTypeOf(detect).returns.resolves.toEqualTypeOf<{ boxes: number }>();
  expectTypeOf(detect.with({ token: "t", signal: AbortSignal.timeout(1) })).toBeCallableWith({ id: "00000000000000ff" }, 0.5);
  // @ts-expect-error the detector's argument is a number
  void detect("00000000000000ff", "high");
});

test("multer's files carry the media once the engine ran", async () => {
  await import("../src/multer/index.ts");
  type MediaOfFile = NonNullable<Express.Multer.File["media"]>;
  expectTypeOf<MediaOfFile["fileCreated"]>().toEqualTypeOf<boolean>();
  expectTypeOf<MediaOfFile["id"]>().toEqualTypeOf<string>();
});

test("media-intake/tus takes @tus/server's MemoryLocker as its locker, and its server's events, without @tus/server's types", async () => {
  const { MemoryLocker, Server } = await import("@tus/server");
  const { createTusIntake } = await import("../src/tus/index.ts");
  type Options = Parameters<typeof createTusIntake>[0];
  expectTypeOf(new MemoryLocker()).toExtend<NonNullable<Options["locker"]>>();
  expectTypeOf<InstanceType<typeof Server>>().toExtend<ReturnType<typeof createTusIntake>["server"]>();
});
