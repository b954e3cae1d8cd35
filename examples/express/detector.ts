// The stand-in detector of the example: deterministic and honest. It walks the container
// structure (PNG chunks through IEND with their CRCs, JPEG segments from SOI to EOI, MP4/MOV
// top-level boxes including moov) and fails on a truncated or corrupt file; on a sound file it
// returns detections derived from the content, so the same bytes always give the same answer.
import { open, readFile } from "node:fs/promises";
import { extname } from "node:path";
import { crc32 } from "node:zlib";

export interface Detection {
  label: string;
  confidence: number;
  box: { x: number; y: number; width: number; height: number };
}

/** The file is not a sound container of its kind; the message says what is wrong where. */
export class CorruptMediaError extends Error {
  readonly code = "DETECTION_FAILED";
  constructor(path: string, reason: string) {
    super(`Detecting on ${extname(path) || path}: ${reason}`);
    this.name = "CorruptMediaError";
  }
}

const LABELS = ["person", "car", "bicycle", "dog", "cat", "truck", "bird", "traffic light"];
const MAX_IMAGE_BYTES = 64 << 20;

/** Runs the stand-in detection on a stored file. */
export async function detect(path: string, id: string, signal?: AbortSignal): Promise<Detection[]> {
  const ext = extname(path).toLowerCase();
  if (ext === ".png") checkPng(path, await readImage(path, signal));
  else if (ext === ".jpg" || ext === ".jpeg") checkJpeg(path, await readImage(path, signal));
  else if ([".mp4", ".m4v", ".mov", ".3gp"].includes(ext)) await checkIsoBoxes(path, signal);
  signal?.throwIfAborted();
  return detectionsFor(id);
}

async function readImage(path: string, signal?: AbortSignal): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    if (size > MAX_IMAGE_BYTES) throw new CorruptMediaError(path, `the stand-in detector reads images up to ${MAX_IMAGE_BYTES} bytes`);
  } finally {
    await handle.close();
  }
  return readFile(path, { signal });
}

function checkPng(path: string, bytes: Buffer): void {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!bytes.subarray(0, 8).equals(signature)) throw new CorruptMediaError(path, "no PNG signature");
  let offset = 8;
  let first = true;
  for (;;) {
    if (offset + 12 > bytes.length) throw new CorruptMediaError(path, `truncated at byte ${offset}: the chunk header is cut off before IEND`);
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (end > bytes.length) throw new CorruptMediaError(path, `truncated in the ${type} chunk at byte ${offset}`);
    if (first && type !== "IHDR") throw new CorruptMediaError(path, "the first chunk is not IHDR");
    const crc = bytes.readUInt32BE(end - 4);
    if (crc32(bytes.subarray(offset + 4, end - 4)) !== crc) throw new CorruptMediaError(path, `bad CRC in the ${type} chunk at byte ${offset}`);
    first = false;
    offset = end;
    if (type === "IEND") return;
  }
}

function checkJpeg(path: string, bytes: Buffer): void {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new CorruptMediaError(path, "no JPEG start-of-image marker");
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) throw new CorruptMediaError(path, `no segment marker at byte ${offset}`);
    const marker = bytes[offset + 1] ?? 0;
    if (marker === 0xd9) return;
    const length = bytes.readUInt16BE(offset + 2);
    if (marker === 0xda) {
      // Entropy-coded data follows the scan header: the image must end with EOI.
      if (bytes.length >= 2 && bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9) return;
      throw new CorruptMediaError(path, "truncated: no end-of-image marker after the scan");
    }
    offset += 2 + length;
  }
  throw new CorruptMediaError(path, `truncated at byte ${offset}: no end-of-image marker`);
}

async function checkIsoBoxes(path: string, signal?: AbortSignal): Promise<void> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(16);
    const seen = new Set<string>();
    for (let offset = 0; offset < size; ) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(header, 0, 16, offset);
      if (bytesRead < 8) throw new CorruptMediaError(path, `truncated box header at byte ${offset}`);
      let boxSize = header.readUInt32BE(0);
      const type = header.toString("latin1", 4, 8);
      if (!/^[\x20-\x7e]{4}$/.test(type)) throw new CorruptMediaError(path, `no box type at byte ${offset}`);
      if (boxSize === 1) {
        if (bytesRead < 16) throw new CorruptMediaError(path, `truncated box header at byte ${offset}`);
        boxSize = Number(header.readBigUInt64BE(8));
      } else if (boxSize === 0) {
        boxSize = size - offset;
      }
      if (boxSize < 8) throw new CorruptMediaError(path, `box "${type}" at byte ${offset} has an impossible size ${boxSize}`);
      if (offset + boxSize > size) throw new CorruptMediaError(path, `truncated in box "${type}" at byte ${offset}`);
      seen.add(type);
      offset += boxSize;
    }
    if (!seen.has("moov")) throw new CorruptMediaError(path, 'no "moov" box: the movie header is missing');
  } finally {
    await handle.close();
  }
}

/** One to three detections whose labels and boxes come from the media ID's digits. */
function detectionsFor(id: string): Detection[] {
  const digits = [...id].map((d) => Number.parseInt(d, 16));
  const count = 1 + ((digits[0] ?? 0) % 3);
  return Array.from({ length: count }, (_, i) => {
    const d = (k: number) => digits[(i * 5 + k) % digits.length] ?? 0;
    return {
      label: LABELS[(d(1) + i) % LABELS.length] ?? "object",
      confidence: Math.round((0.5 + d(2) / 32) * 100) / 100,
      box: { x: d(3) * 4, y: d(4) * 4, width: 16 + d(5) * 8, height: 16 + d(6) * 8 },
    };
  });
}
