// The contract's statuses and the wire casing of records, with no schema library: what the core
// needs at import time. The zod codec (schema.ts) is loaded with the first response it parses.
import type { MediaType } from "../media-type/index.ts";

/** The statuses this library writes, as their wire values (docs/contract.md "MediaStatus"). */
export const MediaStatus = Object.freeze({ New: 1, AIProcessing: 2, AIProcessed: 3, Error: 6 } as const);
/** `1` New, `2` AIProcessing, `3` AIProcessed, `6` Error. */
export type MediaStatus = (typeof MediaStatus)[keyof typeof MediaStatus];

/** The name of a status value, or `"Status <n>"` for values of the service's own later stages. */
export function mediaStatusName(status: number): string {
  const name = Object.entries(MediaStatus).find(([, value]) => value === status)?.[0];
  return name ?? `Status ${status}`;
}

/** A media record: `{ id, name, path, mediaType, mediaStatus, userId }` (parsed by the `MediaRecord` schema of `media-intake/schema`). */
export interface MediaRecord {
  id: string;
  name: string;
  path: string;
  mediaType: MediaType;
  mediaStatus: number;
  userId: string;
}

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
