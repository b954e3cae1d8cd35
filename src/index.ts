export * from "./errors/index.ts";
export * from "./media-id/index.ts";
export * from "./media-type/index.ts";
export * from "./storage/index.ts";
export type { ByteStream } from "./utils/byte-source.ts";
export * from "./auth/index.ts";
export * from "./annotations/index.ts";
export * from "./intake/index.ts";
export * from "./lifecycle/index.ts";
