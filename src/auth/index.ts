export { defaultUserIdClaims, type TokenVerification, userIdFromToken, type UserIdFromTokenOptions } from "./user-id.ts";

// Internal: shared with the integrations, not exported by the package.
export { checkUserIdFromTokenOptions } from "./user-id.ts";
