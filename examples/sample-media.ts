// Small, well-formed sample media made on the spot, so the demo needs no files of its own.
import { crc32, deflateSync } from "node:zlib";

/** One PNG chunk: length, type, data, CRC-32. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A valid RGB PNG of `width` × `height` with a gradient that `seed` shifts. */
export function samplePng(width = 64, height = 48, seed = 0): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit depth, truecolour, deflate, no filter, no interlace
  const rows = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3);
    for (let x = 0; x < width; x++) rows.set([(x * 4 + seed) & 255, (y * 5) & 255, (x + y + seed) & 255], row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(rows)),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
}

/** An MP4 container (ftyp, moov with mvhd, mdat) whose media data is `mediaBytes` long. */
export function sampleMp4(mediaBytes = 1 << 20, seed = 0): Buffer {
  const brand = Buffer.from("isom\0\0\x02\0isomiso2mp41", "latin1");
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1000, 12); // timescale
  mvhd.writeUInt32BE(5000, 16); // duration: 5 s
  mvhd.writeUInt32BE(0x00010000, 20); // rate 1.0
  mvhd.writeUInt16BE(0x0100, 24); // volume 1.0
  mvhd.writeUInt32BE(2, 96); // next track ID
  const data = Buffer.alloc(mediaBytes);
  for (let i = 0; i < mediaBytes; i++) data[i] = (i * 31 + seed) % 251;
  return Buffer.concat([box("ftyp", brand), box("moov", box("mvhd", mvhd)), box("mdat", data)]);
}
