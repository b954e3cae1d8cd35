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
 * read rejects with `signal.reason` at once and the source is closed, even if it is stalled.
 */
export async function* iterateBytes(
  stream: ByteStream,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const iterable: AsyncIterable<unknown> =
    typeof (stream as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function"
      ? (stream as AsyncIterable<unknown>)
      : readerIterable(stream as ReadableStream<Uint8Array>);
  const iterator = iterable[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const step = signal ? await raceAbort(iterator.next(), signal) : await iterator.next();
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
    // Early exit (a throw, a break, an abort): tell the source nobody reads any more. Not
    // awaited, and a Node Readable destroyed outright: a stalled source must not hold the
    // caller's error back (an iterator's return() waits for the pending read).
    if (!finished) {
      const destroy = (stream as { destroy?: unknown }).destroy;
      if (typeof destroy === "function") destroy.call(stream);
      void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
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

async function* readerIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
