// The server's side of reading a challenge's ranges: from an open FileHandle, short reads topped
// up, and a file shorter than the range is an error (the answer would be of other bytes).
import type { FileHandle } from "node:fs/promises";
import type { RangeReader } from "./digest.ts";

/** A {@link RangeReader} on an open file. @throws {RangeError} the file ends inside a range. */
export function fileRangeReader(handle: FileHandle): RangeReader {
  return async (offset, length) => {
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled);
      if (bytesRead === 0) throw new RangeError(`The file ends at ${offset + filled}, inside the range [${offset}, ${offset + length}).`);
      filled += bytesRead;
    }
    return bytes;
  };
}
