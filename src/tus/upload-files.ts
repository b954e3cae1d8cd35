// An upload's own two files in the uploads folder: its bytes (`<id>`) and @tus/file-store's
// metadata (`<id>.json`): read, synced, removed, and never left half-made by a failed creation.
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { syncDirectory } from "../utils/index.ts";

/** What @tus/file-store keeps of an upload in `<id>.json`. */
export interface UploadInfo {
  size?: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

/**
 * An upload's metadata as read: `info` when it holds an upload's JSON, nothing when there is no
 * metadata, `unreadable` (why) when the file is there but holds no JSON object: a creation cut off
 * (a full disk, a crash mid-write), which no request can resume (its size and owner are lost).
 */
export type UploadInfoRead = { readonly info: UploadInfo; readonly unreadable?: undefined } | { readonly info?: undefined; readonly unreadable?: string };

/** The files of the uploads in `uploadsDir`. */
export interface UploadFiles {
  /** The upload's bytes. */
  filePath(uploadId: string): string;
  /** Its metadata, `undefined` when there is none or it cannot be read (no upload, for a request). */
  readInfo(uploadId: string): Promise<UploadInfo | undefined>;
  /** Its metadata, and why not when it is there but cannot be read (for the sweep). */
  readInfoOrWhy(uploadId: string): Promise<UploadInfoRead>;
  /** Removes both files (either may be missing). */
  remove(uploadId: string): Promise<void>;
  /** The metadata and the upload's name on disk made durable (`durability: "power"`). */
  syncInfo(uploadId: string): Promise<void>;
  /**
   * Runs a creation of the upload (its two files made): when it fails (a full disk, a sync that
   * failed), whatever it made is removed before the failure is rethrown.
   */
  createCleanly<T>(uploadId: string, create: () => Promise<T>): Promise<T>;
}

export function uploadFiles(uploadsDir: string): UploadFiles {
  const filePath = (uploadId: string) => join(uploadsDir, uploadId);
  const infoPath = (uploadId: string) => `${filePath(uploadId)}.json`;
  const remove = async (uploadId: string) => {
    await Promise.all([rm(filePath(uploadId), { force: true }), rm(infoPath(uploadId), { force: true })]);
  };
  const readInfoOrWhy = async (uploadId: string): Promise<UploadInfoRead> => {
    const text = await readFile(infoPath(uploadId), "utf8").catch(() => undefined);
    if (text === undefined) return {};
    let info: unknown;
    try {
      info = JSON.parse(text);
    } catch (error) {
      return { unreadable: (error as Error).message };
    }
    return info !== null && typeof info === "object" && !Array.isArray(info) ? { info: info as UploadInfo } : { unreadable: "not a JSON object" };
  };
  return {
    filePath,
    readInfo: async (uploadId) => (await readInfoOrWhy(uploadId)).info,
    readInfoOrWhy,
    remove,
    async syncInfo(uploadId) {
      const info = await open(infoPath(uploadId), "r");
      await info.sync().finally(() => info.close());
      await syncDirectory(uploadsDir);
    },
    async createCleanly(uploadId, create) {
      try {
        return await create();
      } catch (error) {
        // An empty upload beside empty or torn metadata is no upload: nothing may stay of it.
        await remove(uploadId).catch(() => {});
        throw error;
      }
    },
  };
}
