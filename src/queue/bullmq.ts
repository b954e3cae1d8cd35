// bullmq, an optional peer, loaded with media-intake/queue: its entry (index.ts) says which
// package to install when it is missing (utils/peers.ts tells why it is not a static import).
import type * as BullMQ from "bullmq";
import { importPeer, type Peer, requirePeer } from "../utils/index.ts";

export const bullmq: Peer<typeof BullMQ> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs" ? requirePeer("bullmq", (): typeof BullMQ => require("bullmq")) : await importPeer("bullmq", () => import("bullmq"));
