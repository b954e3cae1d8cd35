// The web process's telemetry (telemetry.ts), started by server.ts's first import: before any
// module of the library is evaluated, so that whatever the library takes from
// @opentelemetry/api when it loads is already the SDK's. A bad OpenTelemetry variable stops the
// process here, with its one line.
import { configOrExit, readTelemetryConfig } from "./config.ts";
import { startTelemetry } from "./telemetry.ts";

export const telemetry = startTelemetry(
  configOrExit(() => readTelemetryConfig(process.env)),
  { serviceName: "media-intake-example", metrics: true },
);
