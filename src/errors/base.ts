/** Global-registry symbol, so errors from another copy of the package are recognised too. */
const brand = Symbol.for("media-intake.error");

/**
 * Base class of every error this library throws on purpose.
 *
 * Each subclass has its own `name` and a stable string `code`, so callers can branch on
 * `error.code` (or use {@link isMediaIntakeError}) even when two copies of the package are
 * loaded. The original failure, when there is one, is kept as `cause`.
 */
export class MediaIntakeError extends Error {
  /** Stable machine-readable code, e.g. `"MEDIA_READ_FAILED"`. */
  readonly code: string;

  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MediaIntakeError";
    this.code = options.code ?? "MEDIA_INTAKE_ERROR";
    Object.defineProperty(this, brand, { value: true });
  }
}

/**
 * True when `value` is an error thrown by media-intake (from any copy of the package),
 * optionally only when its `code` is the one given.
 *
 * @example
 * if (isMediaIntakeError(error, "MEDIA_READ_FAILED")) console.error(error.message);
 */
export function isMediaIntakeError(value: unknown, code?: string): value is MediaIntakeError {
  if (!(value instanceof Error)) return false;
  if (!(value instanceof MediaIntakeError) && (value as unknown as Record<symbol, unknown>)[brand] !== true) {
    return false;
  }
  return code === undefined || (value as MediaIntakeError).code === code;
}
