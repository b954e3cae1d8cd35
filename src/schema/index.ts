// media-intake/schema: the zod schema of a media record, for services that parse records of the
// annotations service themselves. Its own entry point, so that the core import loads no zod
// (the client loads the same codec with its first call).
export { MediaRecord } from "../annotations/schema.ts";
