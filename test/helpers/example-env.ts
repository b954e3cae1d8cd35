// The environment of the Express example (examples/express/server.ts, worker.ts) started by a
// test: every variable it reads set, the optional ones empty (unset, for config.ts), so nothing
// of the environment the tests run in leaks into the example.

/** The variables of a start on a free port with these folders, annotations service and secret; `env` over them. */
export function exampleEnv(
  base: { annotationsUrl: string; directories: { videosDir: string; imagesDir: string }; secret: string },
  env: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    PORT: "0",
    ANNOTATIONS_URL: base.annotationsUrl,
    VIDEOS_DIR: base.directories.videosDir,
    IMAGES_DIR: base.directories.imagesDir,
    JWT_SECRET: base.secret,
    LOG_LEVEL: "",
    REDIS_URL: "",
    OTEL_SDK_DISABLED: "",
    OTEL_SERVICE_NAME: "",
    OTEL_EXPORTER_OTLP_ENDPOINT: "",
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
    ...env,
  };
}
