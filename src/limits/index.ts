/**
 * Resource limits enforced at the gRPC edge (config `limits`). See docs/security.md.
 */
export { ConnectionStreams } from "./connection-streams.js";
export { RunGuards, type RunLimits } from "./run-guards.js";
export { TokenBucket } from "./token-bucket.js";
