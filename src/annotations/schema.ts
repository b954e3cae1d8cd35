// The wire codec of docs/contract.md "Annotations service API", in one place: camelCase in TypeScript,
// PascalCase in requests, either casing and enums as numbers or names in responses.
import { z } from "zod";
import { MediaType } from "../media-type/index.ts";

/** The statuses this library writes, as their wire values (docs/contract.md "MediaStatus"). */
export const MediaStatus = Object.freeze({ New: 1, AIProcessing: 2, AIProcessed: 3, Error: 6 } as const);
/** `1` New, `2` AIProcessing, `3` AIProcessed, `6` Error. */
export type MediaStatus = (typeof MediaStatus)[keyof typeof MediaStatus];

/** The name of a status value, or `"Status <n>"` for values of the service's own later stages. */
export function mediaStatusName(status: number): string {
  const name = Object.entries(MediaStatus).find(([, value]) => value === status)?.[0];
  return name ?? `Status ${status}`;
}

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

/** `Id` and `id` alike: PascalCase keys become camelCase, top level only. */
export function camelCaseKeys(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key.charAt(0).toLowerCase() + key.slice(1), field]));
}

/** The request body of `POST /api/media`. */
export function toWireRecord(record: MediaRecord): Record<string, unknown> {
  return {
    Id: record.id,
    Name: record.name,
    Path: record.path,
    MediaType: record.mediaType,
    MediaStatus: record.mediaStatus,
    UserId: record.userId,
  };
}
