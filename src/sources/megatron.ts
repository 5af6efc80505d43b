/**
 * Megatron-Core indexed datasets (`<prefix>.bin` + `<prefix>.idx`), the index read as
 * megatron/core/datasets/indexed_dataset.py writes it (_IndexWriter):
 *   "MMIDIDX\0\0" | u64 version (1) | u8 dtype code | u64 sequence count N |
 *   u64 document count M | i32 sequence lengths [N] | i64 sequence byte pointers [N] |
 *   i64 document indices [M] (sequence index where each document starts, then N)
 *   [| i8 sequence modes [N], multimodal only].
 * Dtype codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16.
 * mixflow serves uint16 (code 8) and int32 (code 4, ids are non-negative so the bytes are
 * uint32). Documents become token offsets for documents mode; windows mode reads the .bin.
 */
import * as fs from "node:fs";
import { SourceError } from "./source.js";

export const MEGATRON_MAGIC = Buffer.from("MMIDIDX\x00\x00", "latin1");
const CODES: Record<number, string> = { 1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float64", 7: "float32", 8: "uint16" };

export interface MegatronIndex {
  readonly dtype: "uint16" | "uint32";
  readonly sequences: number;
  readonly documents: number;
  /** Token offsets of document starts, plus the total token count (documents + 1 entries). */
  readonly docStarts: Float64Array;
}

export function isMegatronIndex(file: string): boolean {
  try {
    const fd = fs.openSync(file, "r");
    try {
      const head = Buffer.alloc(MEGATRON_MAGIC.length);
      return fs.readSync(fd, head, 0, head.length, 0) === head.length && head.equals(MEGATRON_MAGIC);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** `<prefix>`, `<prefix>.bin` or `<prefix>.idx` -> both paths. */
export function megatronPaths(p: string): { bin: string; idx: string } {
  const prefix = p.endsWith(".bin") || p.endsWith(".idx") ? p.slice(0, -4) : p;
  return { bin: `${prefix}.bin`, idx: `${prefix}.idx` };
}

/** Just the dtype (a 18-byte read), for deciding a run's token dtype before opening. */
export function megatronDtype(idx: string): "uint16" | "uint32" {
  const fd = openOrThrow(idx);
  try {
    const head = Buffer.alloc(18);
    const n = fs.readSync(fd, head, 0, 18, 0);
    return checkHeader(idx, head.subarray(0, n)).dtype;
  } finally {
    fs.closeSync(fd);
  }
}

function openOrThrow(idx: string): number {
  try {
    return fs.openSync(idx, "r");
  } catch {
    throw new SourceError(`${idx}: Megatron index file not found (expected next to the .bin, same prefix)`);
  }
}

function checkHeader(idx: string, buf: Buffer): { dtype: "uint16" | "uint32"; item: number } {
  if (buf.length < 18 || !buf.subarray(0, 9).equals(MEGATRON_MAGIC)) {
    throw new SourceError(`${idx}: not a Megatron-Core index (no "MMIDIDX" header)`);
  }
  const version = Number(buf.readBigUInt64LE(9));
  if (version !== 1) throw new SourceError(`${idx}: Megatron index version ${version}; only version 1 is known`);
  const code = buf[17]!;
  if (code === 8) return { dtype: "uint16", item: 2 };
  if (code === 4) return { dtype: "uint32", item: 4 };
  const name = CODES[code];
  throw new SourceError(
    name
      ? `${idx}: Megatron dtype ${name} (code ${code}) cannot be served; token ids must be uint16 (code 8) or int32 (code 4)`
      : `${idx}: unknown Megatron dtype code ${code}`,
  );
}

export function readMegatronIndex(idx: string, binBytes: number): MegatronIndex {
  const fd = openOrThrow(idx);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const { dtype, item } = checkHeader(idx, buf);
  if (buf.length < 34) throw new SourceError(`${idx}: Megatron index truncated in its header (${buf.length} bytes)`);
  const n = Number(buf.readBigUInt64LE(18));
  const m = Number(buf.readBigUInt64LE(26));
  const need = 34 + n * 4 + n * 8 + m * 8;
  if (buf.length < need) {
    throw new SourceError(`${idx}: Megatron index truncated: ${n} sequences and ${m} document indices need ${need} bytes, the file has ${buf.length}`);
  }
  if (buf.length !== need && buf.length !== need + n) {
    throw new SourceError(`${idx}: Megatron index has ${buf.length - need} unexpected trailing bytes after ${n} sequences and ${m} document indices`);
  }
  if (binBytes % item !== 0) throw new SourceError(`${idx}: the .bin's size ${binBytes} is not a multiple of ${item} (dtype ${dtype})`);
  const lenAt = 34;
  const ptrAt = lenAt + n * 4;
  const docAt = ptrAt + n * 8;
  // Sequence token starts; Megatron writes sequences back to back, which documents mode relies on.
  const seqStart = new Float64Array(n + 1);
  let expect = 0;
  for (let i = 0; i < n; i++) {
    const len = buf.readInt32LE(lenAt + i * 4);
    const ptr = Number(buf.readBigInt64LE(ptrAt + i * 8));
    if (len < 0 || ptr !== expect) {
      throw new SourceError(`${idx}: sequence ${i}: pointer ${ptr} / length ${len} do not follow the previous sequence (expected pointer ${expect})`);
    }
    seqStart[i] = ptr / item;
    expect = ptr + len * item;
  }
  seqStart[n] = expect / item;
  if (expect > binBytes) throw new SourceError(`${idx}: the index covers ${expect} bytes but the .bin has ${binBytes}; mismatched or truncated pair`);
  if (m < 1) throw new SourceError(`${idx}: Megatron index lists no document indices`);
  const docStarts = new Float64Array(m);
  let prev = -1;
  for (let d = 0; d < m; d++) {
    const s = Number(buf.readBigInt64LE(docAt + d * 8));
    if (s < prev || s > n || (d === 0 && s !== 0)) {
      throw new SourceError(`${idx}: document index #${d} (${s}) is not a non-decreasing sequence index from 0 to ${n}`);
    }
    docStarts[d] = seqStart[s]!;
    prev = s;
  }
  if (prev !== n) throw new SourceError(`${idx}: the last document index is ${prev}, not the sequence count ${n}`);
  return { dtype, sequences: n, documents: m - 1, docStarts };
}
