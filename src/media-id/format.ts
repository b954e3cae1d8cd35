import { InvalidMediaIdError } from "../errors/index.ts";

/** A media ID: 16 lowercase hex digits (docs/contract.md "Media ID"). */
export type MediaId = string;

const idPattern = /^[0-9a-f]{16}$/i;
const virtualPattern = /^v[0-9a-f]{16}$/i;

/** Formats an XXH64 value as the canonical 16 lowercase hex digits, zero-padded. */
export function formatMediaId(hash: bigint): MediaId {
  return hash.toString(16).padStart(16, "0");
}

/**
 * True when `value` is a media ID of 16 hex digits, in either case. A virtual ID (`V…`) is not.
 *
 * @example
 * isMediaId("6A9B7CE7844AA871"); // true
 */
export function isMediaId(value: unknown): value is MediaId {
  return typeof value === "string" && idPattern.test(value);
}

/** True when `value` is a virtual media ID: `V` (either case) followed by 16 hex digits. */
export function isVirtualMediaId(value: unknown): value is string {
  return typeof value === "string" && virtualPattern.test(value);
}

/** Options of {@link normalizeMediaId}. */
export interface NormalizeMediaIdOptions {
  /**
   * Accept a virtual ID (`V` + 16 hex digits) too; it comes back as `V` + lowercase hex.
   * @default false
   */
  allowVirtual?: boolean;
}

/**
 * Checks and normalises a media ID read from outside (a URL, a CLI argument, a response):
 * either case is accepted and lowercase comes back. Anything else throws
 * {@link InvalidMediaIdError}.
 *
 * @example
 * normalizeMediaId("6A9B7CE7844AA871"); // "6a9b7ce7844aa871"
 */
export function normalizeMediaId(value: unknown, options: NormalizeMediaIdOptions = {}): MediaId {
  if (isMediaId(value)) return value.toLowerCase();
  if (options.allowVirtual && isVirtualMediaId(value)) return `V${value.slice(1).toLowerCase()}`;
  throw new InvalidMediaIdError(value, { allowVirtual: options.allowVirtual === true });
}
