// @tus/server and @tus/file-store, optional peers, loaded with media-intake/tus: its entry
// (index.ts) says which packages to install when they are missing (utils/peers.ts tells why they
// are not static imports). ioredis is not among them: the Redis locker loads it when it is made.
import type * as TusFileStore from "@tus/file-store";
import type * as TusServer from "@tus/server";
import { importPeer, type Peer, requirePeer } from "../utils/index.ts";

export const tusServer: Peer<typeof TusServer> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs"
    ? requirePeer("@tus/server", (): typeof TusServer => require("@tus/server"))
    : await importPeer("@tus/server", () => import("@tus/server"));

export const tusFileStore: Peer<typeof TusFileStore> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs"
    ? requirePeer("@tus/file-store", (): typeof TusFileStore => require("@tus/file-store"))
    : await importPeer("@tus/file-store", () => import("@tus/file-store"));
