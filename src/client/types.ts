/**
 * Decoded, typed shapes the TypeScript client hands to training code. Per-slot arrays and
 * token payloads are typed-array views on the received bytes (no copies).
 */
import type { ClientReadableStream } from "@grpc/grpc-js";

export interface DomainInfo {
  name: string;
  trainSamples: number;
  evalSamples: number;
  minWeight: number;
  maxWeight: number;
  pinned: boolean;
}

export interface WeightsVersion {
  version: number;
  fromStep: number;
  weights: number[];
  reason: string;
  committedAtStep: number;
  competence: number[];
}

export interface RunInfo {
  runId: string;
  /** "preparing": CreateRun is still preparing the run's data (see `preparation`). */
  state: "open" | "closed" | "preparing";
  strategy: string;
  batchSize: number;
  worldSize: number;
  seed: number;
  maxSteps: number;
  payload: "text" | "tokens";
  domains: DomainInfo[];
  current: WeightsVersion;
  frontier: number;
  lastAggregatedStep: number;
  resolvedConfig: unknown;
  seqLen: number;
  /** The run's trainer token: returned once, by CreateRun, when the server has auth on. */
  runToken: string | null;
  /** While state is "preparing": how far the data preparation got; null otherwise. */
  preparation: { phase: string; domain: string; domainsDone: number; domainsTotal: number; elapsedSeconds: number } | null;
}

export interface TokenBlock {
  dtype: "uint16" | "uint32";
  shape: number[];
  /** Token ids (a view on the received bytes). */
  data: Uint16Array | Uint32Array;
  /** Documents mode: token offsets (slots + 1 entries); empty for windows. */
  offsets: Float64Array;
}

export interface TextBlock {
  data: Buffer;
  /** Byte offsets (slots + 1 entries). */
  offsets: Float64Array;
  /** The i-th document as a string. */
  at(i: number): string;
}

export interface EvalProbe {
  domain: number;
  sampleIndices: Float64Array;
  text: TextBlock | null;
  tokens: TokenBlock | null;
}

export interface Batch {
  runId: string;
  step: number;
  rank: number;
  worldSize: number;
  version: number;
  slotOffset: number;
  slots: number;
  /** Domain index per slot. */
  slotDomains: Uint32Array;
  /** Sample index (within the domain's train split) per slot. */
  slotSamples: Float64Array;
  text: TextBlock | null;
  tokens: TokenBlock | null;
  evalRequested: boolean;
  probes: EvalProbe[];
  /** 16 hex digits identifying the global batch's composition. */
  digest: string;
}

export interface ReportResult {
  duplicate: boolean;
  stepComplete: boolean;
  version: number;
}

export interface ReportRequest {
  runId: string;
  step: number;
  rank?: number;
  worldSize?: number;
  /** Per-sample losses aligned with the rank's slots. */
  sampleLosses?: Float32Array | number[];
  /** Or per-domain sums and counts. */
  domainLosses?: { domain: number; lossSum: number; count: number }[];
  /** Per-domain eval losses by domain name. */
  evalLosses?: Record<string, number>;
  /** Reference-model losses aligned with sampleLosses. */
  referenceLosses?: Float32Array | number[];
}

/** A StreamBatches request (the client's raw call). */
export interface StreamRequest {
  runId: string;
  fromStep: number;
  rank?: number;
  worldSize?: number;
  prefetch?: number;
  maxBatches?: number;
  paced?: boolean;
}

/** What the batch iterator needs of a client (MixflowClient is one). */
export interface BatchStreamSource {
  streamBatchesRaw(req: StreamRequest): ClientReadableStream<Record<string, unknown>>;
  getRun(runId: string): Promise<RunInfo>;
  /** Move to the next server address after UNAVAILABLE (no-op with one address). */
  failover(): void;
}

/** What the signal reporter needs of a client (MixflowClient is one). */
export interface ReportSink {
  reportSignals(r: ReportRequest): Promise<ReportResult>;
}
