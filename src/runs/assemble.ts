/**
 * Batch assembly — the hot path. Turns a planned slice into the wire shape of a `Batch`:
 * per-slot arrays as raw little-endian bytes, and one payload buffer (token windows copied
 * straight from the sources into their final place; text and token documents gathered
 * once, then copied once into a single buffer with uint64 offsets).
 */
import type { GlobalBatch } from "../sampling/plan.js";
import type { Source } from "../sources/source.js";

/** Wire shape of TextPayload / TokenPayload (proto-loader, keepCase). */
export interface TextPayloadMsg {
  data: Buffer;
  offsets: Buffer;
}
export interface TokenPayloadMsg {
  dtype: "DTYPE_UINT16" | "DTYPE_UINT32";
  shape: number[];
  data: Buffer;
  offsets: Buffer;
}

export interface AssembledSlice {
  slotDomains: Buffer;
  slotSamples: Buffer;
  text: TextPayloadMsg | null;
  tokens: TokenPayloadMsg | null;
  payloadBytes: number;
  /** Samples per domain in this slice (for metrics). */
  perDomain: Uint32Array;
}

/** uint64 LE encoding of non-negative integers < 2^53, without BigInt. */
export function writeU64(buf: Buffer, index: number, v: number): void {
  buf.writeUInt32LE(v % 4294967296, index * 8);
  buf.writeUInt32LE(Math.floor(v / 4294967296), index * 8 + 4);
}

export function assembleSlice(
  g: GlobalBatch,
  offset: number,
  slots: number,
  train: readonly Source[],
): AssembledSlice {
  const k = train.length;
  const slotDomains = Buffer.allocUnsafe(slots * 4);
  const slotSamples = Buffer.allocUnsafe(slots * 8);
  const perDomain = new Uint32Array(k);
  for (let i = 0; i < slots; i++) {
    const d = g.domains[offset + i]!;
    slotDomains.writeUInt32LE(d, i * 4);
    writeU64(slotSamples, i, g.samples[offset + i]!);
    perDomain[d]!++;
  }
  const first = train[0]!;
  if (first.kind === "tokens" && first.windowTokens !== null) {
    const itemBytes = first.dtype === "uint16" ? 2 : 4;
    const rowBytes = first.windowTokens * itemBytes;
    const data = Buffer.allocUnsafe(slots * rowBytes);
    for (let i = 0; i < slots; i++) {
      train[g.domains[offset + i]!]!.copyWindow(g.samples[offset + i]!, data, i * rowBytes);
    }
    return {
      slotDomains,
      slotSamples,
      text: null,
      tokens: { dtype: first.dtype === "uint16" ? "DTYPE_UINT16" : "DTYPE_UINT32", shape: [slots, first.windowTokens], data, offsets: Buffer.alloc(0) },
      payloadBytes: data.length,
      perDomain,
    };
  }
  const parts: Buffer[] = new Array<Buffer>(slots);
  const offsets = Buffer.allocUnsafe((slots + 1) * 8);
  let total = 0;
  const unit = first.kind === "tokens" ? (first.dtype === "uint16" ? 2 : 4) : 1;
  for (let i = 0; i < slots; i++) {
    const p = train[g.domains[offset + i]!]!.payload(g.samples[offset + i]!);
    parts[i] = p;
    writeU64(offsets, i, total / unit);
    total += p.length;
  }
  writeU64(offsets, slots, total / unit);
  const data = Buffer.concat(parts, total);
  if (first.kind === "text") return { slotDomains, slotSamples, text: { data, offsets }, tokens: null, payloadBytes: total, perDomain };
  return {
    slotDomains,
    slotSamples,
    text: null,
    tokens: { dtype: first.dtype === "uint16" ? "DTYPE_UINT16" : "DTYPE_UINT32", shape: [total / unit], data, offsets },
    payloadBytes: total,
    perDomain,
  };
}
