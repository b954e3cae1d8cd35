export { type HttpErrorAnswer, httpErrorFor } from "./error-answer.ts";
