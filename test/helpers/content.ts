/** Content patterns shared with test/fixtures/generate-media-id-vectors.py: keep them in step. */
export type Pattern = "mod251" | "lcg" | "zeros";

/** The bytes `i % 251` for i = 0 .. size-1: the content of docs/contract.md's vectors. */
export function mod251(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

/** x = x * 1103515245 + 12345 mod 2^31, byte = (x >> 16) & 0xff, from x = 1. */
export function lcg(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff; // only the low 31 bits matter
    bytes[i] = (x >> 16) & 0xff;
  }
  return bytes;
}

export function content(pattern: Pattern, size: number): Uint8Array {
  if (pattern === "mod251") return mod251(size);
  if (pattern === "lcg") return lcg(size);
  return new Uint8Array(size);
}
