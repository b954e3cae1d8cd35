// media-intake/queue: the lifecycle across hosts on Redis (BullMQ and ioredis, optional peers).
export {
  createDetectionQueue,
  DetectionFailedError,
  type DetectionJobData,
  type DetectionQueue,
  type DetectionQueueOptions,
  type DetectionWorker,
  type DetectionWorkerOptions,
  type EnqueuedDetection,
  startDetectionWorker,
} from "./detection.ts";
export { createRedisJournal, type RedisJournalOptions } from "./redis-journal.ts";
export { createRedisTusLocker, type RedisTusLocker, type RedisTusLockerOptions, type TusLock } from "./tus-locker.ts";
