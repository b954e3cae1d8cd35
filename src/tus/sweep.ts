// The sweep of a tus intake's uploads folder: expired and half-created uploads removed, and
// finishes a crash (or a failure) cut off taken up again, from wherever they stopped.
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { LifecycleLogger } from "../lifecycle/index.ts";
import { type FinishMarkers, MARKER_TEMP } from "./finish-marker.ts";
import type { UploadFiles } from "./upload-files.ts";

/** What one {@link TusIntake.sweep} did. */
export interface TusSweepReport {
  /** Complete uploads that a crash left unfinished, now media. */
  readonly finished: string[];
  /** Uploads removed: expired, refused, or left half-created by a crash or a failed creation. */
  readonly removed: string[];
  /** Uploads that could not be finished now (kept for the next sweep). */
  readonly failed: Array<{ readonly uploadId: string; readonly error: unknown }>;
}

/** Upload IDs: 128 random bits, hex. */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** A complete upload (or a finish begun) untouched this long, with no finish under way, was left by a crash. */
export const ABANDONED_FINISH_MS = 30_000;

/** What the sweep works with: the intake's own view of its folder. */
export interface SweepDependencies {
  uploadsDir: string;
  expireAfterMs: number;
  markers: FinishMarkers;
  files: UploadFiles;
  /** Finishes the upload in the background (with the uploader recorded at its creation). */
  finishUpload(uploadId: string): Promise<unknown>;
  logger: LifecycleLogger | undefined;
}

/**
 * The sweep of one intake, each call one pass over its uploads folder (`TusIntake.sweep`). It
 * remembers, for as long as the intake lives, the uploads whose metadata it found unreadable:
 * each is logged once, not on every pass.
 */
export function createTusSweep(deps: SweepDependencies): () => Promise<TusSweepReport> {
  const noted = new Set<string>();
  return () => sweepTusUploads(deps, noted);
}

/**
 * An upload whose metadata is there but cannot be read (a creation cut off by a full disk, or a
 * crash mid-write): no request can resume it, its size and owner being lost. It goes once as old
 * as an expired upload (its newest file's time: a creation under way is never taken for one),
 * logged once (`noted`). Whether it was removed.
 */
async function sweepUnreadable(deps: SweepDependencies, noted: Set<string>, uploadId: string, why: string, now: number): Promise<boolean> {
  const { files, expireAfterMs, logger } = deps;
  const times = await Promise.all([files.filePath(uploadId), `${files.filePath(uploadId)}.json`].map((path) => stat(path).then((s) => s.mtimeMs, () => 0)));
  const expired = now - Math.max(...times) > expireAfterMs;
  if (!noted.has(uploadId)) {
    noted.add(uploadId);
    const line = expired ? "tus upload removed: its metadata cannot be read (a creation cut off)" : `tus upload's metadata cannot be read (a creation cut off): it is removed once expired (${expireAfterMs} ms)`;
    logger?.warn?.({ uploadId, error: why }, line);
  }
  if (!expired) return false;
  await files.remove(uploadId);
  noted.delete(uploadId);
  return true;
}

/** One pass over the uploads folder. */
async function sweepTusUploads(deps: SweepDependencies, noted: Set<string>): Promise<TusSweepReport> {
  const { uploadsDir, expireAfterMs, markers, files, finishUpload, logger } = deps;
  const { filePath, remove: removeUpload } = files;
  const report = { finished: [] as string[], removed: [] as string[], failed: [] as Array<{ uploadId: string; error: unknown }> };
  const names = await readdir(uploadsDir).catch(() => [] as string[]);
  const now = Date.now();
  // Temp files of markers a crash cut off mid-write.
  for (const name of names.filter((one) => MARKER_TEMP.test(one))) {
    const temp = join(uploadsDir, name);
    const written = await stat(temp).catch(() => undefined);
    if (written && now - written.mtimeMs > ABANDONED_FINISH_MS) await rm(temp, { force: true });
  }
  const ids = new Set(names.map((name) => name.replace(/\.(json|media)$/, "")).filter((id) => UPLOAD_ID.test(id)));
  for (const uploadId of ids) {
    try {
      let markerStat = await stat(markers.path(uploadId)).catch(() => undefined);
      const marker = markerStat ? await markers.read(uploadId) : undefined;
      if (markerStat && !marker) {
        // Torn (a power cut): what it said is lost; the upload's own files tell the rest.
        await markers.remove(uploadId);
        markerStat = undefined;
      }
      if (markerStat && marker?.state === "done") {
        if (now - markerStat.mtimeMs > expireAfterMs) await markers.remove(uploadId);
        // A finish that wrote its marker and crashed before removing the upload.
        if (names.includes(`${uploadId}.json`)) await removeUpload(uploadId);
        continue;
      }
      const { info, unreadable } = await files.readInfoOrWhy(uploadId);
      const file = await stat(filePath(uploadId)).catch(() => undefined);
      if (marker && markerStat) {
        // A finish that stopped half-way, untouched for longer than a finish takes: take it up.
        if (now - markerStat.mtimeMs < ABANDONED_FINISH_MS) continue;
        if (now - markerStat.mtimeMs > expireAfterMs) {
          await removeUpload(uploadId);
          await markers.remove(uploadId);
          report.removed.push(uploadId);
          continue;
        }
        await finishUpload(uploadId);
        report.finished.push(uploadId);
        continue;
      }
      if (unreadable !== undefined) {
        if (await sweepUnreadable(deps, noted, uploadId, unreadable, now)) report.removed.push(uploadId);
        continue;
      }
      const created = info?.creation_date ? Date.parse(info.creation_date) : (file?.mtimeMs ?? now);
      if (!info || !file) {
        // Half-created by a crash (a file without its metadata, or the reverse): nothing to resume.
        if (!file || now - created > expireAfterMs || now - file.mtimeMs > ABANDONED_FINISH_MS) {
          await removeUpload(uploadId);
          report.removed.push(uploadId);
        }
        continue;
      }
      if (info.size !== undefined && file.size === info.size) {
        if (now - file.mtimeMs < ABANDONED_FINISH_MS) continue;
        await finishUpload(uploadId);
        report.finished.push(uploadId);
      } else if (now - created > expireAfterMs) {
        await removeUpload(uploadId);
        report.removed.push(uploadId);
      }
    } catch (error) {
      report.failed.push({ uploadId, error });
      logger?.warn?.({ uploadId, error: (error as Error)?.message }, "tus upload not swept");
    }
  }
  return Object.freeze(report);
}
