import type { Readable } from "node:stream";

/**
 * Every streaming shape the library accepts at its edge: a Node `Readable`, a web
 * `ReadableStream` or any `AsyncIterable` of byte chunks.
 */
export type ByteStream = Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** True for the streaming shapes of {@link ByteStream}. */
export function isByteStream(value: unknown): value is ByteStream {
  if (value === null || typeof value !== "object") return false;
  return (
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function" ||
    typeof (value as ReadableStream).getReader === "function"
  );
}

/**
 * Turns any {@link ByteStream} into the one internal shape, an async iterable of `Uint8Array`
 * chunks. A chunk that is not bytes (a string from a stream in text mode, an object) is a
 * `TypeError`: guessing an encoding would change the media ID. When `signal` aborts, a pending
 * read rejects with `signal.reason` at once and the source is let go of (see
 * {@link abandonSource}), even if it is stalled.
 */
export async function* iterateBytes(
  stream: ByteStream,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  // A web stream is read through its own reader (Node's are async-iterable too, but their
  // iterator's return() waits behind a pending read: a stalled stream would never be cancelled).
  const isWeb = typeof (stream as ReadableStream).getReader === "function";
  const reader = isWeb ? (stream as ReadableStream<Uint8Array>).getReader() : undefined;
  const iterator: AsyncIterator<unknown> = reader
    ? { next: () => reader.read() as Promise<IteratorResult<unknown>> }
    : (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let finished = false;
  // One abort listener for the whole stream (not one per chunk): it rejects the read in flight.
  let rejectRead: ((reason: unknown) => void) | undefined;
  const onAbort = () => rejectRead?.(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const read = (): Promise<IteratorResult<unknown>> => {
    const next = iterator.next();
    if (!signal) return next;
    return new Promise((resolve, reject) => {
      rejectRead = reject;
      next.then(resolve, reject);
    });
  };
  try {
    for (;;) {
      signal?.throwIfAborted();
      const step = await read();
      rejectRead = undefined;
      if (step.done) {
        finished = true;
        return;
      }
      const chunk: unknown = step.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(
          `Expected the stream to yield Uint8Array chunks, got ${typeof chunk === "string" ? "a string (is the stream in text mode?)" : typeof chunk}.`,
        );
      }
      yield chunk;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Early exit (a throw, a break, an abort): the source is let go of at once, not awaited: a
    // stalled source must not hold the caller's error back.
    if (!finished) {
      if (reader) void reader.cancel().catch(() => {});
      else {
        abandonSource(stream);
        void Promise.resolve(iterator.return?.()).catch(() => {});
      }
    }
  }
}

/**
 * Lets go of a source that will not be read to its end: a web stream is cancelled, a Node
 * stream destroyed, except an HTTP request, which is drained instead (destroying it would
 * destroy the socket, and with it the answer that says why the upload was refused).
 */
export function abandonSource(source: unknown): void {
  if (source === null || typeof source !== "object") return;
  const node = source as { destroy?: () => void; resume?: () => void; socket?: unknown; headers?: unknown; destroyed?: boolean };
  if (typeof (source as ReadableStream).cancel === "function" && typeof (source as ReadableStream).getReader === "function") {
    if (!(source as ReadableStream).locked) void (source as ReadableStream).cancel().catch(() => {});
    return;
  }
  if (node.destroyed) return;
  if (node.socket !== undefined && node.headers !== undefined && typeof node.resume === "function") node.resume();
  else if (typeof node.destroy === "function") node.destroy();
}

/** Rejects with `signal.reason` as soon as `signal` aborts, else settles as `promise` does. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error as Error);
      },
    );
  });
}
