/**
 * The wire side of serving: a `ServedBatch` (domain values from src/runs) as the
 * `mixflow.v1.Batch` message shape the hand-written encoder writes (proto-loader object
 * shape, keepCase): per-slot arrays as little-endian bytes, payloads as TextPayload or
 * TokenPayload with the proto's enum names.
 */
import { writeU64, type LazyBytes, type ServedBatch, type ServedPayload, type ServedSlice } from "../runs/index.js";

/** TextPayload / TokenPayload (field names as in the .proto). */
export interface TextPayloadMsg {
  data: LazyBytes;
  offsets: Buffer;
}
export interface TokenPayloadMsg {
  dtype: "DTYPE_UINT16" | "DTYPE_UINT32";
  shape: number[];
  data: LazyBytes;
  offsets: Buffer;
}

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

/** Domain per slot as uint32 LE (a view: typed arrays are little-endian on every platform Node supports). */
function u32Bytes(a: Uint32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Sample indices as uint64 LE. */
function u64Bytes(a: Float64Array): Buffer {
  const out = Buffer.allocUnsafe(a.length * 8);
  for (let i = 0; i < a.length; i++) writeU64(out, i, a[i]!);
  return out;
}

function payloadMsg(p: ServedPayload): { text: TextPayloadMsg } | { tokens: TokenPayloadMsg } {
  if (p.kind === "text") return { text: { data: p.data, offsets: p.offsets } };
  return { tokens: { dtype: p.dtype === "uint32" ? "DTYPE_UINT32" : "DTYPE_UINT16", shape: [...p.shape], data: p.data, offsets: p.offsets } };
}

/** Probe messages per probe list (the run keeps one list for its life: encoded once). */
const probeMsgs = new WeakMap<readonly unknown[], EvalProbeMsg[]>();

function probesMsg(probes: ServedBatch["eval"] & object): EvalProbeMsg[] {
  let out = probeMsgs.get(probes);
  if (!out) {
    out = probes.map((p) => ({ domain: p.domain, sample_indices: u64Bytes(p.slice.samples), ...payloadMsg(p.slice.payload) }));
    probeMsgs.set(probes, out);
  }
  return out;
}

export function sliceFields(s: ServedSlice): Pick<BatchMsg, "slot_domains" | "slot_samples" | "text" | "tokens"> {
  return { slot_domains: u32Bytes(s.domains), slot_samples: u64Bytes(s.samples), ...payloadMsg(s.payload) };
}

/** The Batch message of a served batch. */
export function batchMsg(b: ServedBatch): BatchMsg {
  const msg: BatchMsg = {
    run_id: b.runId,
    step: b.step,
    rank: b.rank,
    world_size: b.worldSize,
    version: b.version,
    slot_offset: b.offset,
    slots: b.slots,
    ...sliceFields(b.slice),
    eval_requested: b.eval !== null,
    digest: b.digest,
  };
  if (b.eval) msg.eval = { probes: probesMsg(b.eval) };
  return msg;
}
