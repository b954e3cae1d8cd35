// Recipe: a web-standard handler, `(request: Request) => Promise<Response>`, for Hono, a Next.js
// route handler (`export const POST = handleUpload`), Bun or Deno. The body streams straight
// into intakeMedia: `POST /media?name=clip.mp4` with the file's bytes as the body (what
// `fetch(url, { method: "POST", body: file })` sends). In your service import from "media-intake".
import { type AnnotationsClient, httpErrorFor, intakeMedia, type StorageDirectories, type UserIdFromTokenOptions } from "../../src/index.ts";

export interface WebHandlerConfig {
  client: AnnotationsClient;
  directories: StorageDirectories;
  auth: UserIdFromTokenOptions;
  maxBytes: number;
}

export function createUploadHandler(config: WebHandlerConfig): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      const name = new URL(request.url).searchParams.get("name");
      if (!name || !request.body) {
        return Response.json({ error: { code: "BAD_REQUEST", message: "Expected ?name=<file name> and the file as the body." } }, { status: 400 });
      }
      // A client that goes away aborts request.signal: the store removes its temp file.
      const media = await intakeMedia(request.body, { ...config, originalName: name, token: request.headers.get("authorization"), signal: request.signal });
      return Response.json({ media }, { status: media.created ? 201 : 200 });
    } catch (error) {
      const answer = httpErrorFor(error);
      if (answer.log) console.error(error);
      return Response.json(
        { error: { code: answer.code, message: answer.message, ...(answer.mediaId ? { mediaId: answer.mediaId } : {}) } },
        { status: answer.status, headers: answer.headers },
      );
    }
  };
}
