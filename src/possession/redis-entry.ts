// media-intake/possession/redis: the possession check's challenge store on Redis (redis.ts), for
// several hosts. Without ioredis installed, importing this entry fails here, naming it: not
// ERR_MODULE_NOT_FOUND.
import { needPeers } from "../utils/index.ts";
import { ioredis } from "./redis.ts";

needPeers("media-intake/possession/redis", ioredis);

export { createRedisChallengeStore, type RedisChallengeStore, type RedisChallengeStoreOptions } from "./redis.ts";
export type { RedisConnection } from "../utils/index.ts";
