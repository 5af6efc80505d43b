/**
 * Batch assembly — the hot path. Turns a planned slice into a `ServedSlice`: the slots'
 * domains and samples, and the payload as `LazyBytes` that the batch encoder writes
 * straight into the wire buffer (token windows copied from the sources into their final
 * place; text and token documents gathered, then copied once).
 */
import type { GlobalBatch } from "../sampling/index.js";
import type { Source } from "../sources/index.js";
import type { LazyBytes, ServedSlice } from "./served.js";

export type { LazyBytes } from "./served.js";

/** uint64 LE encoding of non-negative integers < 2^53, without BigInt. */
export function writeU64(buf: Buffer, index: number, v: number): void {
  buf.writeUInt32LE(v % 4294967296, index * 8);
  buf.writeUInt32LE(Math.floor(v / 4294967296), index * 8 + 4);
}

export function assembleSlice(g: GlobalBatch, offset: number, slots: number, train: readonly Source[]): ServedSlice {
  const k = train.length;
  const domains = g.domains.slice(offset, offset + slots);
  const samples = g.samples.slice(offset, offset + slots);
  const perDomain = new Uint32Array(k);
  const bytesPerDomain = new Float64Array(k);
  for (let i = 0; i < slots; i++) perDomain[domains[i]!]!++;
  const first = train[0]!;
  if (first.kind === "tokens" && first.windowTokens !== null) {
    const itemBytes = first.dtype === "uint16" ? 2 : 4;
    const rowBytes = first.windowTokens * itemBytes;
    for (let d = 0; d < k; d++) bytesPerDomain[d] = perDomain[d]! * rowBytes;
    const data: LazyBytes = {
      length: slots * rowBytes,
      write(dst, at) {
        for (let i = 0; i < slots; i++) train[domains[i]!]!.copyWindow(samples[i]!, dst, at + i * rowBytes);
      },
    };
    return { domains, samples, perDomain, bytesPerDomain, payload: { kind: "tokens", dtype: first.dtype, shape: [slots, first.windowTokens], data, offsets: Buffer.alloc(0) } };
  }
  const parts: Buffer[] = new Array<Buffer>(slots);
  const offsets = Buffer.allocUnsafe((slots + 1) * 8);
  let total = 0;
  const unit = first.kind === "tokens" ? (first.dtype === "uint16" ? 2 : 4) : 1;
  for (let i = 0; i < slots; i++) {
    const p = train[domains[i]!]!.payload(samples[i]!);
    parts[i] = p;
    writeU64(offsets, i, total / unit);
    total += p.length;
    bytesPerDomain[domains[i]!]! += p.length;
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
  if (first.kind === "text") return { domains, samples, perDomain, bytesPerDomain, payload: { kind: "text", dtype: null, shape: [], data, offsets } };
  return { domains, samples, perDomain, bytesPerDomain, payload: { kind: "tokens", dtype: first.dtype, shape: [total / unit], data, offsets } };
}
