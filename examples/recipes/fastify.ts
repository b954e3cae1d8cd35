// Recipe: media-intake in Fastify, with @fastify/multipart streaming the file part straight into
// intakeMedia (no buffering, no temp directory of its own). In your service import from
// "media-intake"; `npx tsx` or Node 24 runs this file as is.
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import {
  type AnnotationsClient,
  httpErrorFor,
  intakeMedia,
  type StorageDirectories,
  trackMediaProcessing,
  type UserIdFromTokenOptions,
} from "../../src/index.ts";

export interface FastifyRecipeConfig {
  client: AnnotationsClient;
  directories: StorageDirectories;
  auth: UserIdFromTokenOptions;
  /** The largest upload, in bytes. */
  maxBytes: number;
  /** Your detector. */
  detect: (path: string, signal: AbortSignal) => Promise<unknown>;
}

export async function createFastifyApp(config: FastifyRecipeConfig): Promise<FastifyInstance> {
  const { client, directories, auth, maxBytes } = config;
  const app = Fastify();
  // multipart's own file limit one byte above ours: intakeMedia refuses first, and says so.
  await app.register(multipart, { limits: { files: 1, fileSize: maxBytes + 1 } });
  const detection = trackMediaProcessing((media, { signal }) => config.detect(media.path ?? "", signal), { client, directories });

  app.post("/detect", async (request, reply) => {
    const controller = new AbortController();
    // A client that goes away (the response closes before it was sent): the store aborts.
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) controller.abort(new Error("the client disconnected"));
    });
    const part = await request.file();
    if (!part) return reply.code(400).send({ error: { code: "NO_FILE", message: "Expected a file in the form." } });
    const token = request.headers.authorization;
    const media = await intakeMedia(part.file, { originalName: part.filename, token, auth, client, directories, maxBytes, signal: controller.signal });
    const detections = await detection.with({ ...(token ? { token } : {}), signal: controller.signal })(media);
    return { media, detections };
  });

  // One mapping of errors to answers for every framework: httpErrorFor.
  app.setErrorHandler((error, request, reply) => {
    const answer = httpErrorFor(error);
    if (answer.log) request.log.error({ err: error }, answer.message);
    void reply
      .code(answer.status)
      .headers(answer.headers)
      .send({ error: { code: answer.code, message: answer.message, ...(answer.mediaId ? { mediaId: answer.mediaId } : {}) } });
  });
  return app;
}
