// media-intake/queue: the lifecycle across hosts on Redis (BullMQ and ioredis, optional peers).
export { createRedisJournal, type RedisJournalOptions } from "./redis-journal.ts";
