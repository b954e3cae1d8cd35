// media-intake/tus: resumable uploads (tus 1.0 through @tus/server and @tus/file-store, optional
// peers), and the tus locker on Redis for an endpoint served by several processes (ioredis, an
// optional peer loaded only when a locker is made).
export { createRedisTusLocker, type RedisTusLocker, type RedisTusLockerOptions, type TusLock, type TusLocker } from "./redis-locker.ts";
export { createTusIntake, type TusIntake, type TusIntakeOptions, type TusServerEvents, type TusSweepReport } from "./tus-intake.ts";

import { needPeers } from "../utils/index.ts";
import { tusFileStore, tusServer } from "./peers.ts";

// Without @tus/server or @tus/file-store installed, importing this entry fails here, naming them:
// not ERR_MODULE_NOT_FOUND.
needPeers("media-intake/tus", tusServer, tusFileStore);
