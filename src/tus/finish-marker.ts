// The finish marker of a tus upload (`<upload id>.media`): what stays of an upload once its
// finish has begun, so that any later request (a HEAD, the sweep, in any process) knows the
// media, the uploader, and how far the finish got.
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LifecycleLogger } from "../lifecycle/index.ts";
import { type Durability, syncDirectory } from "../utils/index.ts";

/**
 * `placing` from just before the upload's file is linked into place (its ID known, its record
 * maybe not yet), `done` once the media have a record and `onMediaIntaken` has resolved.
 */
export interface FinishMarker {
  readonly state: "placing" | "done";
  readonly mediaId: string;
  /** Where the media file is (or is being) placed. */
  readonly path: string;
  readonly size: number;
  /** The uploader: only they may read it. */
  readonly userId: string;
  /** What `onMediaIntaken` returned, for a finish that comes again. */
  readonly extra?: Record<string, unknown>;
}

function isFinishMarker(value: unknown): value is FinishMarker {
  const marker = value as FinishMarker | null;
  return (
    typeof marker === "object" &&
    marker !== null &&
    (marker.state === "placing" || marker.state === "done") &&
    typeof marker.mediaId === "string" &&
    typeof marker.path === "string" &&
    typeof marker.userId === "string" &&
    Number.isSafeInteger(marker.size)
  );
}

/** A marker's temp file, left by a write cut off mid-way: `<upload id>.media.<hex>.tmp`. */
export const MARKER_TEMP = /^[0-9a-f]{32}\.media\.[0-9a-f]+\.tmp$/;

/** The markers of the uploads in `uploadsDir`. */
export function finishMarkers(uploadsDir: string, logger: LifecycleLogger | undefined, durability: Durability = "process") {
  const path = (uploadId: string) => join(uploadsDir, `${uploadId}.media`);
  return {
    path,
    /** The marker; `undefined` when there is none, or a torn one (never written so here, but a power cut may). */
    async read(uploadId: string): Promise<FinishMarker | undefined> {
      let text: string;
      try {
        text = await readFile(path(uploadId), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
      try {
        const marker: unknown = JSON.parse(text);
        if (isFinishMarker(marker)) return marker;
      } catch {}
      logger?.warn?.({ uploadId }, "tus finish marker unreadable; ignored");
      return undefined;
    },
    /**
     * Written whole or not at all (a temp file renamed over it): a reader never sees half a
     * marker. With durability "power", synced before it is renamed, and its folder after.
     */
    async write(uploadId: string, marker: FinishMarker): Promise<void> {
      const temp = `${path(uploadId)}.${randomBytes(6).toString("hex")}.tmp`;
      try {
        await writeFile(temp, JSON.stringify(marker), { flush: durability === "power" });
        await rename(temp, path(uploadId));
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      if (durability === "power") await syncDirectory(uploadsDir);
    },
    remove: (uploadId: string) => rm(path(uploadId), { force: true }),
  };
}

/** The markers of one intake, as {@link finishMarkers} makes them. */
export type FinishMarkers = ReturnType<typeof finishMarkers>;
