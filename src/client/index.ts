/**
 * The public face of the TypeScript client: `import { MixflowClient } from "mixflow/client"`.
 */
export { MixflowClient, type ClientOptions, type ReportRequest } from "./client.js";
export { BatchIterator, MixflowRunGoneError, type BatchIteratorOptions } from "./batch-iterator.js";
export { SignalReporter, type ReporterOptions } from "./reporter.js";
export type { Batch, DomainInfo, EvalProbe, ReportResult, RunInfo, TextBlock, TokenBlock, WeightsVersion } from "./types.js";
