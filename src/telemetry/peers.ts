// @opentelemetry/api, an optional peer, loaded with the core: when it is installed, the library's
// spans and metrics go to whatever SDK the host registers with it; when it is not, every
// telemetry call is a no-op and nothing says so (utils/peers.ts tells why it is not a static
// import). No entry point needs it, so none names it as missing.
import type * as OtelApi from "@opentelemetry/api";
import { importPeer, type Peer, requirePeer } from "../utils/index.ts";

/** @opentelemetry/api as this module loaded it: its module, or `undefined` when it is not installed. */
export const otelApi: Peer<typeof OtelApi> =
  process.env.MEDIA_INTAKE_FORMAT === "cjs"
    ? requirePeer("@opentelemetry/api", (): typeof OtelApi => require("@opentelemetry/api"))
    : await importPeer("@opentelemetry/api", () => import("@opentelemetry/api"));
