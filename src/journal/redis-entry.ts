// media-intake/journal/redis: the journal on Redis (redis.ts). Without ioredis installed, importing
// this entry fails here, naming it: not ERR_MODULE_NOT_FOUND. (media-intake/queue reaches redis.ts
// too, for its deprecated createRedisJournal, and needs no ioredis for its own work.)
import { needPeers } from "../utils/index.ts";
import { ioredis } from "./redis.ts";

needPeers("media-intake/journal/redis", ioredis);

export { createRedisJournal, type RedisConnection, type RedisJournalOptions } from "./redis.ts";
