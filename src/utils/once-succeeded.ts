/**
 * Runs `run` once it succeeds: concurrent callers share the attempt under way, and a failed one
 * is forgotten, so the next caller tries again (never a rejection kept for good). For what an
 * engine prepares once: a folder and its heartbeat, a connection, a lazily loaded module.
 */
export function onceSucceeded<T>(run: () => Promise<T>): () => Promise<T> {
  let attempt: Promise<T> | undefined;
  return () =>
    (attempt ??= run().catch((error: unknown) => {
      attempt = undefined;
      throw error;
    }));
}
