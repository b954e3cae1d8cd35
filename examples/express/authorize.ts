// Who may see what in the example (docs/authorization.md): a record by its ID only for its own
// user and the service role; everyone else gets the answer of an ID that does not exist, so that
// existence does not leak. A media ID is no secret: anyone holding the bytes (or the sampled
// parts of them the ID reads) computes it.
import { isMediaIntakeError, type MediaRecord, MediaIntakeError } from "../../src/index.ts";

/** Who is asking: the user ID from their verified token, and the token itself (for hosts whose roles are claims). */
export interface DetectionsCaller {
  /** The user ID of the caller's token (see `userIdFromToken`). */
  readonly userId: string;
  /** The caller's bearer token, already checked; never log it. */
  readonly token: string;
}

/**
 * Whether `caller` may read or rerun `record` by its ID. `false` answers 404, the same answer as
 * for an ID that does not exist. Sync or async; a throw fails the request (500), never opens it.
 */
export type AuthorizeMedia = (record: MediaRecord, caller: DetectionsCaller) => boolean | Promise<boolean>;

/**
 * The example's default rule: the record's own user (the UserId of the token that created it),
 * or a caller whose user ID is one of `serviceUserIds` (the service role).
 *
 * @example
 * authorize: (record, caller) => isOwnerOrService(record, caller, ["ops"]) || rolesOf(caller.token).includes("auditor")
 */
export function isOwnerOrService(record: Pick<MediaRecord, "userId">, caller: Pick<DetectionsCaller, "userId">, serviceUserIds: readonly string[] = []): boolean {
  return record.userId === caller.userId || serviceUserIds.includes(caller.userId);
}

/** An error the app answers with its own status. */
export class AppError extends MediaIntakeError {
  readonly status: number;
  readonly expose = true;
  /** Headers that go with the answer (`Retry-After` of a 503). */
  readonly headers: Readonly<Record<string, string>>;
  /** The media the answer is about, when they are kept. */
  readonly mediaId: string | undefined;
  constructor(status: number, code: string, message: string, extra: { headers?: Record<string, string>; mediaId?: string } = {}) {
    super(message, { code });
    this.name = "AppError";
    this.status = status;
    this.headers = extra.headers ?? {};
    this.mediaId = extra.mediaId;
  }
}

/** The one answer for a media ID that does not exist or is not the caller's to see. */
export const mediaNotFound = (id: string) => new AppError(404, "MEDIA_NOT_FOUND", `No media ${id}.`);

/** The one answer for a job that does not exist, expired, or is not the caller's to see. */
export const jobNotFound = (jobId: string) => new AppError(404, "NOT_FOUND", `No detection job ${jobId} (never queued, or its result expired).`);

/**
 * The record of `id` when `caller` may see it; otherwise `notFound(id)`, whether the record is
 * missing, another user's, or refused to the caller's token by the annotations service (403).
 */
export async function readAuthorized(
  read: () => Promise<MediaRecord>,
  caller: DetectionsCaller,
  authorize: AuthorizeMedia,
  notFound: () => Error,
): Promise<MediaRecord> {
  let record: MediaRecord;
  try {
    record = await read();
  } catch (error) {
    if (isMediaIntakeError(error, "MEDIA_NOT_FOUND") || (isMediaIntakeError(error, "ANNOTATIONS_AUTH_FAILED") && (error as { status?: number }).status === 403)) throw notFound();
    throw error;
  }
  if (!(await authorize(Object.freeze({ ...record }), Object.freeze({ ...caller })))) throw notFound();
  return record;
}

/**
 * The media as an upload's answer shows it: whole to the record's user (and the service role);
 * to another uploader of the same content, without the first uploader's user ID and file name.
 */
export function mediaFor<Media extends MediaRecord>(media: Media, seesRecord: boolean): Media | Omit<Media, "userId" | "name"> {
  if (seesRecord) return media;
  const { userId: _userId, name: _name, ...content } = media;
  return content;
}
