// The server's side of an answer: the stored file of a challenge's content, found where a store
// of it would be (or nothing), and the answer's digest compared with the one of that file's
// ranges in constant time. Content the service does not hold is hashed too (zeros), so that a
// refusal costs as much hashing whether the service holds the content or not.
import { timingSafeEqual } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { computeMediaIdSync, initMediaIdHasher } from "../media-id/index.ts";
import type { KeptChallenge } from "./challenge.ts";
import { answerDigest, fromBase64url, type RangeReader } from "./digest.ts";
import { fileRangeReader } from "./file-range.ts";

/** A stored file of the challenge's content, open for reading. */
export interface HeldFile {
  readonly path: string;
  readonly handle: FileHandle;
}

/** File-system codes of a path where nothing is stored. */
const absent = new Set(["ENOENT", "ENOTDIR"]);

/** SHA-256's length: a digest of another length is no answer. */
const DIGEST_BYTES = 32;

/** Zeros in place of the bytes of content the service does not hold. */
const zeros: RangeReader = async (_offset, length) => new Uint8Array(length);

/**
 * The first of `paths` that is a regular file of `size` bytes whose media ID is `id`, open; or
 * `undefined`. A file that cannot be read for another reason than its absence is told to `warn`
 * and passed over: the client then uploads, and the upload meets the trouble itself.
 */
export async function openHeldFile(paths: readonly string[], id: string, size: number, warn: (fields: Record<string, unknown>, line: string) => void): Promise<HeldFile | undefined> {
  await initMediaIdHasher();
  for (const path of paths) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, "r");
      const stats = await handle.stat();
      // The size first: a file of another size is other content, whatever its name.
      if (stats.isFile() && stats.size === size && computeMediaIdSync(handle.fd) === id) return { path, handle };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      if (!absent.has(code ?? "")) warn({ id, error: (error as Error)?.message }, "possession check: a stored file could not be read; taken as not held");
    }
    await handle?.close().catch(() => {});
  }
  return undefined;
}

/**
 * Whether `digest` is the answer to `kept` for the bytes of `held`: false when nothing is held
 * (the digest of zeros is computed and compared all the same), when the file ends inside a range,
 * or when `digest` is not the base64url of 32 bytes. The comparison is `timingSafeEqual`.
 */
export async function answerMatches(kept: KeptChallenge, held: HeldFile | undefined, digest: unknown): Promise<boolean> {
  let readable = held !== undefined;
  let expected: string;
  try {
    expected = await answerDigest(kept, held ? fileRangeReader(held.handle) : zeros);
  } catch {
    // The file shrank under the check: not the content the challenge was for.
    readable = false;
    expected = await answerDigest(kept, zeros);
  }
  const given = decodeDigest(digest);
  const equal = timingSafeEqual(fromBase64url(expected), given ?? new Uint8Array(DIGEST_BYTES));
  return readable && given !== undefined && equal;
}

/** The 32 bytes of a base64url digest, or `undefined` when it is none. */
function decodeDigest(digest: unknown): Uint8Array | undefined {
  if (typeof digest !== "string" || digest.length > 64) return undefined;
  try {
    const bytes = fromBase64url(digest);
    return bytes.byteLength === DIGEST_BYTES ? bytes : undefined;
  } catch {
    return undefined;
  }
}
