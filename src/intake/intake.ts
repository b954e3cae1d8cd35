import { rm } from "node:fs/promises";
import type { AnnotationsClient, MediaRecord } from "../annotations/index.ts";
import { userIdFromToken, type UserIdFromTokenOptions } from "../auth/index.ts";
import { addJournalEntry, checkLeaseMs, DEFAULT_LEASE_MS, type JournalHandle } from "../lifecycle/journal.ts";
import { type DetectedMediaKind, resolveMediaType } from "../media-type/index.ts";
import { sanitizeMediaName, type StoreMediaOptions, type StoreMediaSource, storeMedia } from "../storage/index.ts";

/** Options of {@link intakeMedia}: the store's options and what the record needs. */
export interface IntakeMediaOptions extends Omit<StoreMediaOptions, "beforePlace"> {
  /** The caller's JWT (a `Bearer ` prefix is tolerated): its user ID goes on the record, and it authorises the create. */
  token: string | undefined | null;
  /** The annotations client. */
  client: AnnotationsClient;
  /** How the user ID is read from the token: claim and verification; see {@link userIdFromToken}. */
  auth?: UserIdFromTokenOptions;
  /** Lease of the crash-journal entry, renewed while the intake lives. @default 30_000 */
  leaseMs?: number;
}

/** The media an intake produced: its record and what the store saw (frozen). */
export interface IntakenMedia extends MediaRecord {
  /** `false` when the record existed already: a re-upload of the same content. */
  readonly created: boolean;
  /** `false` when identical bytes were stored already. */
  readonly fileCreated: boolean;
  /** What the bytes look like; see {@link detectMediaKind}. */
  readonly detected: DetectedMediaKind | undefined;
  /** Size in bytes. */
  readonly size: number;
}

/**
 * The whole upload-to-record flow (SPEC.md "The job"):
 * 1. the user ID from the token: a bad token fails before a byte is written ({@link AuthTokenError});
 * 2. the type from the name, before a byte is written ({@link UnsupportedMediaTypeError});
 * 3. {@link storeMedia} streams the bytes to their persistent path;
 * 4. the record is created with status New; when it exists already (a re-upload), the existing
 *    record is returned. If creating fails for any other reason, a file this call created is
 *    removed again (a file that was already there is left alone), and the real error is thrown.
 *
 * A crash journal entry covers the step between the file landing and its record: after a crash,
 * {@link recoverInterrupted} creates the missing record.
 *
 * @example
 * const media = await intakeMedia(req, { originalName: "clip.MP4", token: req.headers.authorization, client, directories });
 */
export async function intakeMedia(source: StoreMediaSource, options: IntakeMediaOptions): Promise<IntakenMedia> {
  const { token, client, auth, leaseMs = DEFAULT_LEASE_MS, ...storeOptions } = options;
  checkLeaseMs(leaseMs);
  if (!client?.media) throw new TypeError("Expected `client` to be an annotations client.");
  const userId = await userIdFromToken(token, auth);
  resolveMediaType(storeOptions.originalName, storeOptions.mediaTypes);

  let journal: JournalHandle | undefined;
  try {
    const stored = await storeMedia(source, {
      ...storeOptions,
      beforePlace: async ({ id, path, mediaType }) => {
        journal = await addJournalEntry(
          storeOptions.directories,
          { kind: "intake", id, path, mediaType, userId, name: sanitizeMediaName(storeOptions.originalName) },
          leaseMs,
        );
      },
    });
    try {
      const bearer = typeof token === "string" ? token : undefined;
      const { record, created } = await client.media.createOrGet(
        { id: stored.id, name: stored.name, path: stored.path, mediaType: stored.mediaType, userId },
        { ...(bearer ? { token: bearer } : {}), ...(storeOptions.signal ? { signal: storeOptions.signal } : {}) },
      );
      return Object.freeze({ ...record, created, fileCreated: stored.created, detected: stored.detected, size: stored.size });
    } catch (error) {
      if (stored.created) await rm(stored.path, { force: true });
      throw error;
    }
  } finally {
    await journal?.remove();
  }
}
