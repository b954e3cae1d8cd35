// The wire codec of docs/contract.md "Annotations service API", in one place: camelCase in TypeScript,
// PascalCase in requests, either casing and enums as numbers or names in responses.
import { z } from "zod";
import { MediaType } from "../media-type/index.ts";
import { MediaStatus } from "./status.ts";

export { MediaStatus, mediaStatusName } from "./status.ts";


function enumField<T extends Record<string, number>>(table: T, acceptUnknownNumbers: boolean) {
  const byName = new Map(Object.entries(table).map(([name, value]) => [name.toLowerCase(), value]));
  const known = new Set(Object.values(table));
  return z.union([z.number().int(), z.string()]).transform((value, ctx) => {
    if (typeof value === "number") {
      if (acceptUnknownNumbers || known.has(value)) return value;
    } else {
      const found = byName.get(value.toLowerCase()) ?? (/^\d+$/.test(value) && (acceptUnknownNumbers || known.has(Number(value))) ? Number(value) : undefined);
      if (found !== undefined) return found;
    }
    ctx.addIssue({ code: "custom", message: `expected one of ${Object.keys(table).join(", ")}, got ${JSON.stringify(value)}` });
    return z.NEVER;
  });
}

/**
 * A media record as this library hands it on: camelCase, the ID lowercase, `mediaType` 1 or 2,
 * `mediaStatus` any integer (4 and 5 belong to the service's later stages and are kept).
 */
export const MediaRecord = z.object({
  id: z
    .string()
    .regex(/^[0-9a-f]{16}$/i, "expected 16 hex digits")
    .transform((id) => id.toLowerCase()),
  name: z.string(),
  path: z.string(),
  mediaType: enumField(MediaType, false) as z.ZodType<MediaType>,
  mediaStatus: enumField(MediaStatus, true) as z.ZodType<number>,
  userId: z.string(),
});
/** A media record: `{ id, name, path, mediaType, mediaStatus, userId }`. */
export type MediaRecord = z.infer<typeof MediaRecord>;

/** An RFC 9457 problem body, loosely: every field optional, unknown ones ignored. */
export const ProblemBody = z.object({
  title: z.string().optional().catch(undefined),
  detail: z.string().optional().catch(undefined),
  errors: z.record(z.string(), z.array(z.string())).optional().catch(undefined),
});
