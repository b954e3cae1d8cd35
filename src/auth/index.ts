export { defaultUserIdClaims, type TokenVerification, userIdFromToken, type UserIdFromTokenOptions } from "./user-id.ts";
