/**
 * mixflow as a library: start a server in-process, or use the client.
 */
export { MixflowServer, type ServerOptions } from "./server/server.js";
export { loadServerConfig } from "./config/load.js";
export { serverConfig, runConfig, type ServerConfig, type RunConfig } from "./config/schema.js";
export { MixflowError, type ErrorCode } from "./errors.js";
export * from "./client/index.js";
export { STRATEGIES, getStrategy } from "../strategies/index.js";
export type { Strategy, StrategyContext, StepSignals, StrategyOutput, DomainInfo } from "../strategies/index.js";
