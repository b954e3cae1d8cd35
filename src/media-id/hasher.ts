import xxhash from "xxhash-wasm";
import { MediaIntakeError } from "../errors/index.ts";

/** The one XXH64 function this library uses: seed 0 over a contiguous buffer. */
type H64Raw = (input: Uint8Array, seed?: bigint) => bigint;

let h64Raw: H64Raw | undefined;
let loading: Promise<H64Raw> | undefined;

/**
 * Loads the XXH64 WebAssembly module once per process; later calls return at once. The async
 * ID functions call it themselves; call it at start-up before using {@link computeMediaIdSync}.
 *
 * @example
 * await initMediaIdHasher();
 * const id = computeMediaIdSync("/data/videos/clip.mp4");
 */
export async function initMediaIdHasher(): Promise<void> {
  await loadHasher();
}

/** The shared hash function, loading the WebAssembly module on first use. */
export function loadHasher(): Promise<H64Raw> | H64Raw {
  if (h64Raw) return h64Raw;
  loading ??= xxhash().then(
    (api) => (h64Raw = api.h64Raw),
    (error: unknown) => {
      loading = undefined;
      throw new MediaIntakeError("Loading the XXH64 WebAssembly module failed", {
        code: "MEDIA_ID_HASHER_FAILED",
        cause: error,
      });
    },
  );
  return loading;
}

/** The shared hash function, for the sync paths; a typed error when it is not loaded yet. */
export function loadedHasher(caller: string): H64Raw {
  if (h64Raw) return h64Raw;
  throw new MediaIntakeError(
    `${caller}: the XXH64 hasher is not loaded yet; await initMediaIdHasher() once at start-up (the async functions load it themselves)`,
    { code: "MEDIA_ID_NOT_READY" },
  );
}
