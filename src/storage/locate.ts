// Where stored content is, without storing anything: the paths a store of that content under a
// name would use or find it at (the possession check looks for a held file there).
import type { MediaId } from "../media-id/index.ts";
import { siblingPaths } from "./place.ts";
import { planNamedPath, type StorageDirectories, type StorageNaming } from "./plan.ts";
import type { UploadName } from "./upload-name.ts";

/**
 * The paths at which a store of the content `id`, uploaded as `name`, would find it stored: the
 * path the name's extension gives (through `naming` when given), then the paths of the sibling
 * extensions of its type a store compares for a duplicate (under the default content check:
 * those of the same container family, and those outside every known family). Nothing is read.
 *
 * @throws {StoragePathEscapeError} a custom `naming` that leaves its directory.
 * @internal shared through storage/index.ts; not exported by the package.
 */
export async function storedPathsOf(directories: Readonly<StorageDirectories>, id: MediaId, name: UploadName, naming: StorageNaming | undefined): Promise<string[]> {
  const info = Object.freeze({ id, extension: name.extension, originalName: name.originalName, mediaType: name.mediaType });
  const path = await planNamedPath(directories, info, naming);
  const siblings = await siblingPaths({ directories, info, naming }, path, { mediaTypes: name.mediaTypes, verify: "reject" });
  return [path, ...siblings];
}
