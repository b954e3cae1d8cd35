// What uploadResumable needs of tus-js-client (an optional peer): the shape of its Upload class, as
// a type of our own so that media-intake/browser's types never name the package, its loading
// (a dynamic import, or the class the page passes), and a reader of Blob slices for runtimes whose
// tus-js-client build reads no Blob (Node, Deno and Bun get its Node build: Buffers and streams).
import { MediaReadError } from "../errors/index.ts";

/** An upload tus-js-client remembers (its URL storage's entries). */
export interface TusPreviousUpload {
  size: number | null;
  metadata: Record<string, string>;
  creationTime: string;
  urlStorageKey: string;
  uploadUrl: string | null;
  parallelUploadUrls: string[] | null;
}

/** Where tus-js-client keeps the URLs of unfinished uploads (`localStorage` in a browser by default). */
export interface TusUrlStorage {
  findAllUploads(): Promise<TusPreviousUpload[]>;
  findUploadsByFingerprint(fingerprint: string): Promise<TusPreviousUpload[]>;
  removeUpload(urlStorageKey: string): Promise<void>;
  addUpload(fingerprint: string, upload: TusPreviousUpload): Promise<string>;
}

/** A response, as tus-js-client hands it on. */
export interface TusHttpResponse {
  getStatus(): number;
  getHeader(header: string): string | undefined;
  getBody(): string;
}

/** A request, as tus-js-client hands it to `onAfterResponse`. */
export interface TusHttpRequest {
  getMethod(): string;
  getURL(): string;
}

/** A piece of the file, as tus-js-client's readers give it. */
interface TusSlice {
  value: unknown;
  done: boolean;
}

/** tus-js-client's `fileReader` option. */
export interface TusFileReader {
  openFile(input: unknown, chunkSize: number): Promise<{ size: number; slice(start: number, end: number): Promise<TusSlice>; close(): void }>;
}

/** The options uploadResumable gives tus-js-client's `Upload`. */
export interface TusUploadOptions {
  endpoint: string;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  chunkSize: number;
  retryDelays: number[];
  onShouldRetry: (error: { originalResponse?: TusHttpResponse | null; causingError?: unknown }, retryAttempt: number, options: unknown) => boolean;
  onAfterResponse: (request: TusHttpRequest, response: TusHttpResponse) => void;
  fingerprint: (file: Blob) => Promise<string>;
  storeFingerprintForResuming: boolean;
  removeFingerprintOnSuccess: boolean;
  urlStorage?: TusUrlStorage;
  fileReader?: TusFileReader;
  onProgress: (bytesSent: number, bytesTotal: number) => void;
  onSuccess: (payload: { lastResponse: TusHttpResponse }) => void;
  onError: (error: Error) => void;
}

/** An upload of tus-js-client, as uploadResumable drives it. */
export interface TusUpload {
  url: string | null;
  start(): void;
  abort(shouldTerminate?: boolean): Promise<void>;
  findPreviousUploads(): Promise<TusPreviousUpload[]>;
  resumeFromPreviousUpload(previousUpload: TusPreviousUpload): void;
}

/** tus-js-client's `Upload` class (`import { Upload } from "tus-js-client"`, or `tus.Upload` of its dist/tus.min.js). */
export type TusUploadClass = new (file: Blob, options: TusUploadOptions) => TusUpload;

/** The Upload class given, else tus-js-client's, imported now. @throws {Error} (MissingPeerDependencyError) it cannot be imported. */
export async function loadTusUpload(given: TusUploadClass | undefined, load: () => Promise<unknown> = importTus): Promise<TusUploadClass> {
  if (given !== undefined) {
    if (typeof given !== "function") throw new TypeError("uploadResumable: `Upload` must be tus-js-client's Upload class.");
    return given;
  }
  let module: unknown;
  try {
    module = await load();
  } catch (cause) {
    const error = new Error(
      'uploadResumable (media-intake/browser) needs the optional peer dependency "tus-js-client": npm install tus-js-client. ' +
        "Or pass its Upload class as the `Upload` option (a page without a bundler loads tus-js-client's dist/tus.min.js and passes `Upload: tus.Upload`).",
      { cause },
    );
    error.name = "MissingPeerDependencyError";
    throw error;
  }
  const Upload = (module as { Upload?: unknown } | undefined)?.Upload ?? (module as { default?: { Upload?: unknown } } | undefined)?.default?.Upload;
  if (typeof Upload !== "function") throw new TypeError('uploadResumable: the module "tus-js-client" has no Upload class.');
  return Upload as TusUploadClass;
}

/**
 * tus-js-client, imported when the page gives no Upload class. Inside a try: a bundler (esbuild,
 * webpack) then leaves a missing package to run time instead of failing the build, and a page
 * that passes `Upload` needs no tus-js-client installed.
 */
async function importTus(): Promise<unknown> {
  try {
    return await import("tus-js-client");
  } catch (error) {
    throw error;
  }
}

/**
 * Whether tus-js-client reads Blobs here: its browser build does (and sends the slices with
 * XMLHttpRequest); its Node build, the one Node, Deno and Bun load, takes only Buffers and
 * streams, so a Blob goes through {@link blobReader} there.
 */
export const tusReadsBlobs = (): boolean => typeof XMLHttpRequest === "function";

/** A tus-js-client `fileReader` of Blob slices as Uint8Arrays (`size` set, as its Buffer source does), one chunk in memory at a time. */
export const blobReader: TusFileReader = {
  async openFile(input) {
    if (!(input instanceof Blob)) throw new TypeError("uploadResumable: expected a Blob or a File.");
    const size = input.size;
    return {
      size,
      async slice(start, end) {
        let bytes: ArrayBuffer;
        try {
          bytes = await input.slice(start, Math.min(end, size)).arrayBuffer();
        } catch (error) {
          throw new MediaReadError("<blob>", error instanceof Error ? error.message : String(error), error);
        }
        const value = new Uint8Array(bytes) as Uint8Array & { size?: number };
        value.size = value.byteLength;
        return { value, done: end >= size };
      },
      close() {},
    };
  },
};
