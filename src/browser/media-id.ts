// computeMediaId of media-intake/browser: the media ID of a Blob or File. It takes the byte layout,
// the hasher and the format from media-id/ file by file, because media-id/index.ts also hands on
// compute.ts (node:fs).
import { MediaReadError } from "../errors/index.ts";
import { formatMediaId, type MediaId } from "../media-id/format.ts";
import { loadHasher } from "../media-id/hasher.ts";
import { MAX_INPUT_BYTES, readBlobSamples } from "../media-id/sampling.ts";
import { describe, untilAborted } from "./shared.ts";

/** Options of {@link computeMediaId} (media-intake/browser). */
export interface ComputeMediaIdOptions {
  /** Aborts the computation; it then rejects with `signal.reason`, at once, even mid-read. */
  signal?: AbortSignal;
}

/**
 * Computes the media ID of docs/contract.md of a `Blob` or `File`: the very ID the server's
 * `computeMediaId` gives for the same bytes, so a page can ask for a record before it uploads.
 * Reads three 1 KiB `slice()`s at once whatever the size (the whole blob below 3 KiB), and loads
 * the XXH64 WebAssembly module on first use, alongside.
 *
 * @throws {MediaReadError} the blob cannot be read (a `File` whose file changed or was removed).
 * @throws {TypeError} `blob` is not a `Blob`, or an option is unknown.
 * @example
 * import { computeMediaId } from "media-intake/browser";
 * const id = await computeMediaId(input.files[0]); // "6a9b7ce7844aa871"
 */
export async function computeMediaId(blob: Blob, options: ComputeMediaIdOptions = {}): Promise<MediaId> {
  const unknown = Object.keys(options).filter((key) => key !== "signal");
  if (unknown.length > 0) throw new TypeError(`computeMediaId: unknown option ${JSON.stringify(unknown[0])}; the one option is \`signal\`.`);
  const { signal } = options;
  signal?.throwIfAborted();
  if (!(blob instanceof Blob)) throw new TypeError(`computeMediaId: expected a Blob or a File, got ${describe(blob)}.`);
  const buffer = new Uint8Array(MAX_INPUT_BYTES);
  const reading = readBlobSamples(blob, buffer).catch((error: unknown) => {
    throw new MediaReadError("<blob>", error instanceof Error ? error.message : String(error), error);
  });
  const [h64, length] = await untilAborted(Promise.all([loadHasher(), reading]), signal);
  return formatMediaId(h64(buffer.subarray(0, length)));
}
