// Recipe: the web-standard handler mounted in Hono, served on Node by @hono/node-server.
import { Hono } from "hono";
import { createUploadHandler, type WebHandlerConfig } from "./web-handler.ts";

export function createHonoApp(config: WebHandlerConfig): Hono {
  const app = new Hono();
  const upload = createUploadHandler(config);
  app.post("/media", (c) => upload(c.req.raw));
  return app;
}
