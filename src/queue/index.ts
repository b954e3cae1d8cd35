// media-intake/queue: detection across hosts on Redis (BullMQ, an optional peer). In 0.2 the Redis
// journal moved to media-intake/journal/redis and the Redis tus locker to media-intake/tus; their
// names here still work, deprecated. Each is imported from its own file, not its folder's door:
// tus/index.ts would bring @tus/server into this entry.
import { needPeers } from "../utils/index.ts";
import { createRedisJournal as redisJournal, type RedisJournalOptions as RedisJournalOptionsType } from "../journal/redis.ts";
import {
  createRedisTusLocker as redisTusLocker,
  type RedisTusLocker as RedisTusLockerType,
  type RedisTusLockerOptions as RedisTusLockerOptionsType,
  type TusLock as TusLockType,
} from "../tus/redis-locker.ts";

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
import { bullmq } from "./bullmq.ts";

// Without bullmq installed, importing this entry fails here, naming it: not ERR_MODULE_NOT_FOUND.
needPeers("media-intake/queue", bullmq);

/** @deprecated Import from "media-intake/journal/redis": `import { createRedisJournal } from "media-intake/journal/redis"`. */
export const createRedisJournal: typeof redisJournal = redisJournal;
/** @deprecated Import from "media-intake/journal/redis". */
export type RedisJournalOptions = RedisJournalOptionsType;
/** @deprecated Import from "media-intake/tus": `import { createRedisTusLocker } from "media-intake/tus"`. */
export const createRedisTusLocker: typeof redisTusLocker = redisTusLocker;
/** @deprecated Import from "media-intake/tus". */
export type RedisTusLocker = RedisTusLockerType;
/** @deprecated Import from "media-intake/tus". */
export type RedisTusLockerOptions = RedisTusLockerOptionsType;
/** @deprecated Import from "media-intake/tus". */
export type TusLock = TusLockType;
