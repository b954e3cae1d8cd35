// What the store's tests (test/storage-{sources,refusals,paths,place}.test.ts) start from: a
// fresh temp root for each test with the two storage directories under it, the files left there,
// a PNG to store, and a way to cut bytes into chunks.
import { join } from "node:path";
import { beforeEach } from "vitest";
import { samplePng } from "../../examples/sample-media.ts";
import type { StorageDirectories } from "../../src/index.ts";
import { filesUnder, makeTempDir } from "./temp-dir.ts";

/** The PNG most tests store. */
export const png = samplePng(64, 48, 3);

export function chunksOf(bytes: Uint8Array, size = 65536): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** What each test of a file that calls {@link useStorageRoot} finds, fresh for each test. */
export interface StorageRoot {
  /** A fresh temp directory (removed after the test), not yet holding the storage directories. */
  root: string;
  /** `<root>/videos` and `<root>/images`. */
  directories: StorageDirectories;
  /** Every file under the storage root, relative to it. */
  filesLeft(): Promise<string[]>;
}

/** Gives every test of the calling file a fresh temp root and its two storage directories. */
export function useStorageRoot(): StorageRoot {
  const fixture = { filesLeft: () => filesUnder(fixture.root) } as StorageRoot;
  beforeEach(async () => {
    fixture.root = await makeTempDir();
    fixture.directories = { videosDir: join(fixture.root, "videos"), imagesDir: join(fixture.root, "images") };
  });
  return fixture;
}
