/**
 * Decoded, typed shapes the TypeScript client hands to training code. Per-slot arrays and
 * token payloads are typed-array views on the received bytes (no copies).
 */

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
  state: "open" | "closed";
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
