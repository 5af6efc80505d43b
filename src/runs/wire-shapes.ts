/**
 * The proto-loader object shapes (keepCase) of `Batch` and `EvalProbe`, as the server's
 * hand-written encoder (src/server/batch-encoder.ts) reads them.
 */
import type { TextPayloadMsg, TokenPayloadMsg } from "./assemble.js";

/** Wire shape of a Batch (proto-loader, keepCase). */
export interface BatchMsg {
  run_id: string;
  step: number;
  rank: number;
  world_size: number;
  version: number;
  slot_offset: number;
  slots: number;
  slot_domains: Buffer;
  slot_samples: Buffer;
  text?: TextPayloadMsg;
  tokens?: TokenPayloadMsg;
  eval_requested: boolean;
  eval?: { probes: EvalProbeMsg[] };
  digest: string;
}

export interface EvalProbeMsg {
  domain: number;
  sample_indices: Buffer;
  text?: TextPayloadMsg;
  tokens?: TokenPayloadMsg;
}
