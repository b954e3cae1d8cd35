export {
  type DevAnnotationsServer,
  type DevAnnotationsServerOptions,
  type StatusHistoryEntry,
  startDevAnnotationsServer,
} from "./server.ts";
