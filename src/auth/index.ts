/**
 * Authentication and transport security for the gRPC port: bearer tokens (admin and
 * per-run), their durable digests, and TLS/mTLS credentials. See docs/security.md.
 */
export { ADMIN_METHODS, Authorizer, type AuthSettings, type Principal } from "./authorizer.js";
export { authSettings, isLoopback, serverCredentials } from "./settings.js";
export { bearerToken, digestToken, generateRunToken, sameDigest } from "./tokens.js";
