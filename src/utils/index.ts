// The shared helpers' one door. None of them is part of the package's API (src/index.ts hands
// on the `ByteStream` type only).
export { abandonSource, type ByteStream, isByteStream, iterateBytes, raceAbort } from "./byte-source.ts";
export { type Durability, durabilityOf, strongerDurability } from "./durability.ts";
export { describeFsError, syncDirectory } from "./fs-errors.ts";
export { createKeyedLock } from "./keyed-lock.ts";
export { isLocalFileSystem } from "./local-fs.ts";
export { checkOptionsOf, MINIMUM, type OptionChecks, rejectUnknownOptions, showValue } from "./options.ts";
export { onceSucceeded } from "./once-succeeded.ts";
export { isOwnerAlive, OWNER_KEY_PATTERN, processOwnerKey } from "./process-identity.ts";
export { callRedisPromptly, checkRedisConnection, DEFAULT_REDIS_TIMEOUT_MS, type RedisConnection, RedisDisconnectedError, redisFrom } from "./redis-connection.ts";
export { importPeer, missingPeersError, needPeers, type Peer, peerModule, requirePeer } from "./peers.ts";
export { maskErrorUrlPasswords, maskUrlPasswords } from "./url-password.ts";
