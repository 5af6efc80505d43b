/**
 * Batch assembly — the hot path. Turns a planned slice into the wire shape of a `Batch`:
 * per-slot arrays as raw little-endian bytes, and the payload as `LazyBytes` that the
 * batch encoder writes straight into the wire buffer (token windows copied from the
 * sources into their final place; text and token documents gathered, then copied once).
 */
import type { GlobalBatch } from "../sampling/plan.js";
import type { Source } from "../sources/source.js";

/**
 * Payload bytes that are written straight into the encoded message: the batch encoder
 * allocates the final wire buffer once and asks each payload to fill its part, so a token
 * window travels source → wire buffer with a single copy.
 */
export interface LazyBytes {
  readonly length: number;
  write(dst: Buffer, offset: number): void;
}

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
  // Typed-array views write little-endian on every platform Node supports (x64, arm64).
  const dom = new Uint32Array(slots);
  const smp = new Uint32Array(slots * 2);
  const perDomain = new Uint32Array(k);
  for (let i = 0; i < slots; i++) {
    const d = g.domains[offset + i]!;
    const v = g.samples[offset + i]!;
    dom[i] = d;
    smp[2 * i] = v % 4294967296;
    smp[2 * i + 1] = Math.floor(v / 4294967296);
    perDomain[d]!++;
  }
  const slotDomains = Buffer.from(dom.buffer);
  const slotSamples = Buffer.from(smp.buffer);
  const first = train[0]!;
  if (first.kind === "tokens" && first.windowTokens !== null) {
    const itemBytes = first.dtype === "uint16" ? 2 : 4;
    const rowBytes = first.windowTokens * itemBytes;
    const data: LazyBytes = {
      length: slots * rowBytes,
      write(dst, at) {
        for (let i = 0; i < slots; i++) train[g.domains[offset + i]!]!.copyWindow(g.samples[offset + i]!, dst, at + i * rowBytes);
      },
    };
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
  const data: LazyBytes = {
    length: total,
    write(dst, at) {
      for (const p of parts) {
        p.copy(dst, at);
        at += p.length;
      }
    },
  };
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
