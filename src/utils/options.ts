// The one options helper of every public function: the check of unknown options, typed checks
// whose messages name the function and the option (p-retry style), and one minimum per concept.
import { maskUrlPasswords } from "./url-password.ts";

/**
 * The smallest value of each kind of option, one per concept, shared by every function that
 * takes one (both journal engines, the queue, the tus intake, the client, recovery).
 */
export const MINIMUM = Object.freeze({
  /** A heartbeat's period (both journal engines, and the period a heartbeat file records). */
  heartbeatMs: 100,
  /** A wait, a timeout, a lifetime or a lock's duration (Redis calls, the client, locks, uploads). */
  timeoutMs: 1,
  /** A pause between two tries (the client's retry delays, the queue's backoff): 0 is none. */
  delayMs: 0,
  /** The period of a repeated pass (recovery, sweeps, BullMQ's stalled check). */
  intervalMs: 10,
  /** How long a temp file stays untouched before it counts as abandoned: 0 is at once. */
  ageMs: 0,
  /** A limit in bytes (`maxBytes`). */
  maxBytes: 1,
});

/**
 * Refuses an option the function does not know (a typo such as `maxbytes` would otherwise be
 * ignored in silence): a `TypeError` naming it, and the option meant when only its case differs.
 */
export function rejectUnknownOptions(options: unknown, known: readonly string[], of: string): void {
  if (options === null || typeof options !== "object") return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const meant = known.find((name) => name.toLowerCase() === key.toLowerCase());
    throw new TypeError(`Unknown option \`${key}\` of ${of}${meant ? ` (did you mean \`${meant}\`?)` : ""}.`);
  }
}

/** A value as a message shows it: strings quoted, never a whole object. */
export function showValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return value.constructor?.name && value.constructor !== Object ? `a ${value.constructor.name}` : "an object";
  return String(value);
}

/** A range of numbers, and the unit its message names. */
export interface OptionRange {
  min: number;
  max?: number;
  unit?: "ms" | "s" | "bytes";
}

function rangeText({ min, max, unit }: OptionRange): string {
  const suffix = unit ? ` ${unit === "bytes" && (max ?? min) === 1 ? "byte" : unit}` : "";
  return max === undefined ? `of at least ${min}${suffix}` : `from ${min} to ${max}${suffix}`;
}

/** The checks of one function's options; each throws a `TypeError` naming the function and the option. */
export interface OptionChecks {
  /** The function the messages name. */
  readonly of: string;
  /** An option's full name in messages (`retries` nested in `retry`: "retry.retries"). */
  label(name: string): string;
  /** The checks of the nested options of `key` (`retry`: "`retry.retries`"). */
  nested(key: string): OptionChecks;
  /** Refuses an unknown option, as {@link rejectUnknownOptions}. */
  known(options: unknown, names: readonly string[]): void;
  /** Throws "`of`: expected `name` to be `expected`, got `value`." */
  fail(name: string, expected: string, value: unknown): never;
  /** A safe integer in `range`. */
  integer(name: string, value: unknown, range: OptionRange): number;
  /** A finite number in `range`. */
  number(name: string, value: unknown, range: OptionRange): number;
  /** `true`, `false` or undefined. */
  boolean(name: string, value: unknown): boolean | undefined;
  /** A function or undefined (every function option is optional). */
  func(name: string, value: unknown): void;
  /** A non-empty string. */
  string(name: string, value: unknown): string;
  /** An absolute URL whose protocol is one of `protocols` (its `href`). */
  url(name: string, value: unknown, protocols: readonly string[]): string;
  /** One of `choices`. */
  oneOf<T>(name: string, value: unknown, choices: readonly T[]): T;
}

/**
 * The checks of the options of the function `of` (of its option `path` when given), such as
 * "createFileJournal: expected `heartbeatMs` to be a number of at least 100 ms, got 20."
 */
export function checkOptionsOf(of: string, path?: string): OptionChecks {
  const fail = (name: string, expected: string, value: unknown): never => {
    throw new TypeError(`${of}: expected \`${label(name)}\` to be ${expected}, got ${showValue(value)}.`);
  };
  const label = (name: string) => (path ? `${path}.${name}` : name);
  const inRange = (value: number, { min, max }: OptionRange) => value >= min && (max === undefined || value <= max);
  return {
    of,
    label,
    nested: (key) => checkOptionsOf(of, path ? `${path}.${key}` : key),
    known: (options, names) => rejectUnknownOptions(options, names, path ? `${of}'s \`${path}\`` : of),
    fail,
    integer(name, value, range) {
      if (!Number.isSafeInteger(value) || !inRange(value as number, range)) fail(name, `an integer ${rangeText(range)}`, value);
      return value as number;
    },
    number(name, value, range) {
      if (typeof value !== "number" || !Number.isFinite(value) || !inRange(value, range)) fail(name, `a number ${rangeText(range)}`, value);
      return value as number;
    },
    boolean(name, value) {
      if (value !== undefined && typeof value !== "boolean") fail(name, "true or false", value);
      return value as boolean | undefined;
    },
    func(name, value) {
      if (value !== undefined && typeof value !== "function") fail(name, "a function", value);
    },
    string(name, value) {
      if (typeof value !== "string" || value === "") fail(name, "a non-empty string", value);
      return value as string;
    },
    url(name, value, protocols) {
      const names = protocols.map((protocol) => protocol.replace(/:$/, ""));
      const expected = `an absolute ${names.join(",") === "http,https" ? "http(s)" : names.join(" or ")} URL`;
      try {
        const url = new URL(String(value));
        if (protocols.includes(url.protocol)) return url.href;
      } catch {
        // Refused below.
      }
      return fail(name, expected, maskUrlPasswords(typeof value === "string" ? value : String(value)));
    },
    oneOf(name, value, choices) {
      if (!choices.includes(value as never)) {
        const listed = choices.map((choice) => showValue(choice));
        fail(name, listed.length > 1 ? `${listed.slice(0, -1).join(", ")} or ${listed.at(-1)}` : String(listed[0]), value);
      }
      return value as (typeof choices)[number];
    },
  };
}
