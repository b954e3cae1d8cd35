import { MediaIntakeError } from "./base.ts";

/** What an RFC 9457 problem body said, when the annotations service sent one. */
export interface ProblemDetails {
  /** Short summary, e.g. `"One or more validation errors occurred."`. */
  readonly title?: string | undefined;
  /** Longer explanation for this occurrence. */
  readonly detail?: string | undefined;
  /** Field errors, ASP.NET style: `{ "MediaType": ["The MediaType field is required."] }`. */
  readonly errors?: Readonly<Record<string, readonly string[]>> | undefined;
}

/** What every failed call to the annotations service records. */
export interface AnnotationsCallInfo {
  /** `"GET"`, `"POST"` or `"PUT"`. */
  readonly method: string;
  /** The path called, e.g. `/api/media/6a9b7ce7844aa871/status` (never the query or a token). */
  readonly path: string;
  /** How many attempts were made, retries included. */
  readonly attempts: number;
}

function attemptsText(attempts: number): string {
  return attempts > 1 ? ` (after ${attempts} attempts)` : "";
}

function problemText(problem: ProblemDetails | undefined): string {
  if (!problem) return "";
  const parts = [problem.title, problem.detail].filter((part): part is string => typeof part === "string" && part !== "");
  const fields = Object.entries(problem.errors ?? {}).map(([field, messages]) => `${field}: ${messages.join(" ")}`);
  const text = [...parts, ...fields].join("; ");
  return text === "" ? "" : ` — ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
}

/**
 * The annotations service answered with an error status. The message says what was called,
 * what came back and the problem body's text:
 * `PUT /api/media/6a9b7ce7844aa871/status: 503 Service Unavailable (after 4 attempts)`.
 */
export class AnnotationsHttpError extends MediaIntakeError implements AnnotationsCallInfo {
  readonly method: string;
  readonly path: string;
  readonly attempts: number;
  /** The HTTP status. */
  readonly status: number;
  /** The status text, e.g. `"Service Unavailable"`. */
  readonly statusText: string;
  /** The RFC 9457 problem body, when there was one. */
  readonly problem: ProblemDetails | undefined;

  constructor(call: AnnotationsCallInfo, status: number, statusText: string, problem?: ProblemDetails, code = "ANNOTATIONS_HTTP_ERROR") {
    super(`${call.method} ${call.path}: ${status} ${statusText}${attemptsText(call.attempts)}${problemText(problem)}`, { code });
    this.name = "AnnotationsHttpError";
    this.method = call.method;
    this.path = call.path;
    this.attempts = call.attempts;
    this.status = status;
    this.statusText = statusText;
    this.problem = problem;
  }
}

/**
 * 404 with the contract's problem body (a `title` or a `detail`): no media record with that ID.
 * (A 404 without one is an {@link AnnotationsRouteMissingError}: a wrong path says nothing of
 * the record.)
 */
export class MediaNotFoundError extends AnnotationsHttpError {
  constructor(call: AnnotationsCallInfo, statusText: string, problem?: ProblemDetails) {
    super(call, 404, statusText, problem, "MEDIA_NOT_FOUND");
    this.name = "MediaNotFoundError";
  }
}

/** 409: a media record with that ID exists already. */
export class MediaConflictError extends AnnotationsHttpError {
  constructor(call: AnnotationsCallInfo, statusText: string, problem?: ProblemDetails) {
    super(call, 409, statusText, problem, "MEDIA_CONFLICT");
    this.name = "MediaConflictError";
  }
}

/**
 * 405 on any call, 404 on the create (`POST /api/media`), or a 404 without the contract's problem
 * body (no `title` or `detail`: a router's "no such path", not the service's "no such media"):
 * the annotations service has no such route. Not a verdict on the media but a misconfiguration
 * (the client's `baseUrl`, a proxy's path): nothing is refused for good, no record is taken to
 * be missing, and an upload's file is kept until the route answers.
 */
export class AnnotationsRouteMissingError extends AnnotationsHttpError {
  /** @param reason what follows the status in the message, its separator included. */
  constructor(call: AnnotationsCallInfo, status: number, statusText: string, problem?: ProblemDetails, reason = ": the annotations service has no such route (check its base URL)") {
    super(call, status, statusText, problem, "ANNOTATIONS_ROUTE_MISSING");
    this.name = "AnnotationsRouteMissingError";
    this.message = `${this.message}${reason}`;
  }
}

/** 401 or 403: the token was refused by the annotations service. */
export class AnnotationsAuthError extends AnnotationsHttpError {
  constructor(call: AnnotationsCallInfo, status: number, statusText: string, problem?: ProblemDetails) {
    super(call, status, statusText, problem, "ANNOTATIONS_AUTH_FAILED");
    this.name = "AnnotationsAuthError";
  }
}

/** A response body that does not match the Media schema; `issues` are zod's. */
export class AnnotationsResponseError extends MediaIntakeError implements AnnotationsCallInfo {
  readonly method: string;
  readonly path: string;
  readonly attempts: number;
  /** What did not match, as zod reported it. */
  readonly issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>;

  constructor(call: AnnotationsCallInfo, reason: string, issues: AnnotationsResponseError["issues"] = []) {
    const listed = issues
      .slice(0, 5)
      .map((issue) => `${issue.path.map(String).join(".") || "(body)"}: ${issue.message}`)
      .join("; ");
    super(`${call.method} ${call.path}: ${reason}${listed ? ` (${listed})` : ""}`, { code: "ANNOTATIONS_BAD_RESPONSE" });
    this.name = "AnnotationsResponseError";
    this.method = call.method;
    this.path = call.path;
    this.attempts = call.attempts;
    this.issues = issues;
  }
}

/** The annotations service could not be reached, or did not answer in time, after every retry. */
export class AnnotationsUnavailableError extends MediaIntakeError implements AnnotationsCallInfo {
  readonly method: string;
  readonly path: string;
  readonly attempts: number;

  constructor(call: AnnotationsCallInfo, reason: string, cause?: unknown) {
    super(`${call.method} ${call.path}: ${reason}${attemptsText(call.attempts)}`, { code: "ANNOTATIONS_UNAVAILABLE", cause });
    this.name = "AnnotationsUnavailableError";
    this.method = call.method;
    this.path = call.path;
    this.attempts = call.attempts;
  }
}
