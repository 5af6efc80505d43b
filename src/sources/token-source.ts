/**
 * Pre-tokenized sources: flat little-endian uint16/uint32 token files (nanoGPT/Megatron
 * style), served either as fixed windows of seq_len + 1 tokens (window i starts at token
 * i·seq_len, so consecutive windows share one token, as next-token training needs) or as
 * documents, delimited by an end-of-document token or by a uint64 LE offsets file.
 */
import { lastAtOrBelow } from "../util/search.js";
import * as fs from "node:fs";
import { FileBytes } from "./file-bytes.js";
import { fingerprint, loadIndex, saveIndex } from "./index-cache.js";
import { SourceError, type Source } from "./source.js";
import { readDifficultyFile } from "./difficulty.js";
import { progress } from "../util/progress.js";
import { isMegatronIndex, readMegatronIndex } from "./megatron.js";

export interface TokenOptions {
  readonly paths: readonly string[];
  readonly dtype: "uint16" | "uint32";
  readonly mode: "windows" | "documents";
  readonly seqLen: number;
  readonly eosToken?: number | undefined;
  readonly indexPaths?: readonly string[] | undefined;
  readonly difficultyFile?: string | undefined;
  readonly cacheDir: string;
}

interface TokenFile {
  bytes: FileBytes;
  tokens: number;
  /** Documents mode: token offsets of document starts, plus the end. */
  docStarts: Float64Array | null;
  samples: number;
}

export class TokenSource implements Source {
  readonly kind = "tokens" as const;
  readonly dtype: "uint16" | "uint32";
  readonly windowTokens: number | null;
  readonly size: number;
  readonly sizeMeasure: number;
  readonly difficulty: Float64Array | null;
  private readonly itemBytes: number;
  private readonly seqLen: number;
  private readonly files: TokenFile[];
  private readonly prefix: number[];

  constructor(opts: TokenOptions) {
    this.dtype = opts.dtype;
    this.itemBytes = opts.dtype === "uint16" ? 2 : 4;
    this.seqLen = opts.seqLen;
    this.windowTokens = opts.mode === "windows" ? opts.seqLen + 1 : null;
    if (opts.mode === "documents" && opts.eosToken === undefined && !opts.indexPaths) {
      throw new SourceError(`${opts.paths[0]}: documents mode needs "eosToken" or "indexPaths"`);
    }
    if (opts.indexPaths && opts.indexPaths.length !== opts.paths.length) {
      throw new SourceError(`indexPaths has ${opts.indexPaths.length} entries but paths has ${opts.paths.length}`);
    }
    this.files = opts.paths.map((p, i) => this.openFile(p, i, opts));
    this.prefix = [0];
    for (const f of this.files) this.prefix.push(this.prefix[this.prefix.length - 1]! + f.samples);
    this.size = this.prefix[this.prefix.length - 1]!;
    if (this.size === 0) throw new SourceError(`${opts.paths.join(", ")}: no samples (files too short for one window of ${opts.seqLen + 1} tokens?)`);
    this.sizeMeasure = this.files.reduce((a, f) => a + f.tokens, 0);
    this.difficulty = opts.difficultyFile ? readDifficultyFile(opts.difficultyFile, this.size) : null;
  }

  payload(i: number): Buffer {
    const [f, j] = this.locate(i);
    const [a, b] = this.range(f, j);
    return f.bytes.slice(a * this.itemBytes, b * this.itemBytes);
  }

  copyWindow(i: number, dst: Buffer, offset: number): number {
    const [f, j] = this.locate(i);
    const [a, b] = this.range(f, j);
    f.bytes.readInto(a * this.itemBytes, b * this.itemBytes, dst, offset);
    return (b - a) * this.itemBytes;
  }

  textSample(max: number): string[] {
    // Token ids are opaque here; use their bytes as the "text" for dedup/compression stats.
    const n = Math.min(max, this.size);
    const out: string[] = [];
    for (let k = 0; k < n; k++) out.push(this.payload(Math.floor((k * this.size) / n)).toString("latin1"));
    return out;
  }

  close(): void {
    for (const f of this.files) f.bytes.close();
  }

  private range(f: TokenFile, j: number): [number, number] {
    if (f.docStarts) return [f.docStarts[j]!, f.docStarts[j + 1]!];
    const a = j * this.seqLen;
    return [a, a + this.seqLen + 1];
  }

  private locate(i: number): [TokenFile, number] {
    const f = lastAtOrBelow(this.files.length, i, (k) => this.prefix[k]!);
    return [this.files[f]!, i - this.prefix[f]!];
  }

  private openFile(file: string, i: number, opts: TokenOptions): TokenFile {
    if (!fs.existsSync(file)) throw new SourceError(`${file}: file not found`);
    const st = fs.statSync(file);
    if (!st.isFile()) throw new SourceError(`${file}: not a regular file`);
    if (st.size === 0) throw new SourceError(`${file}: file is empty`);
    if (st.size % this.itemBytes !== 0) {
      throw new SourceError(`${file}: size ${st.size} bytes is not a multiple of ${this.itemBytes} (dtype ${opts.dtype}); wrong dtype or truncated file?`);
    }
    const tokens = st.size / this.itemBytes;
    const bytes = new FileBytes(file, st.size);
    if (opts.mode === "windows") {
      const samples = tokens >= opts.seqLen + 1 ? Math.floor((tokens - 1) / opts.seqLen) : 0;
      return { bytes, tokens, docStarts: null, samples };
    }
    const docStarts = opts.indexPaths ? this.readIndex(opts.indexPaths[i]!, st.size, tokens, opts) : this.eosIndex(file, bytes, tokens, opts);
    return { bytes, tokens, docStarts, samples: docStarts.length - 1 };
  }

  /** A document index: mixflow's uint64 offsets, or a Megatron-Core .idx (recognised by its header). */
  private readIndex(idx: string, binBytes: number, tokens: number, opts: TokenOptions): Float64Array {
    if (!isMegatronIndex(idx)) return readOffsets(idx, tokens);
    const m = readMegatronIndex(idx, binBytes);
    if (m.dtype !== opts.dtype) throw new SourceError(`${idx}: Megatron index says dtype ${m.dtype} but the source declares ${opts.dtype}`);
    // Empty documents are not samples.
    const starts = [m.docStarts[0]!];
    for (let d = 1; d < m.docStarts.length; d++) if (m.docStarts[d]! > starts[starts.length - 1]!) starts.push(m.docStarts[d]!);
    if (starts.length < 2) throw new SourceError(`${idx}: Megatron index has no non-empty documents`);
    return Float64Array.from(starts);
  }

  /** Document starts at every token after an EOS token (cached). */
  private eosIndex(file: string, bytes: FileBytes, tokens: number, opts: TokenOptions): Float64Array {
    const fp = fingerprint(file);
    const key = `tokens-eos:${opts.dtype}:${opts.eosToken}`;
    const cached = loadIndex(opts.cacheDir, file, key, fp);
    if (cached) return cached.arrays.docStarts!;
    const starts: number[] = [0];
    const step = 1 << 20;
    const prog = progress(`indexing ${file}`);
    for (let t = 0; t < tokens; t += step) {
      const end = Math.min(tokens, t + step);
      const buf = bytes.slice(t * this.itemBytes, end * this.itemBytes);
      for (let k = 0; k < end - t; k++) {
        const v = this.itemBytes === 2 ? buf.readUInt16LE(k * 2) : buf.readUInt32LE(k * 4);
        if (v === opts.eosToken && t + k + 1 < tokens) starts.push(t + k + 1);
      }
      prog.update(end, tokens);
    }
    prog.done();
    starts.push(tokens);
    const docStarts = Float64Array.from(starts);
    saveIndex(opts.cacheDir, file, key, fp, { meta: {}, arrays: { docStarts } });
    return docStarts;
  }
}

function readOffsets(file: string, tokens: number): Float64Array {
  if (!fs.existsSync(file)) throw new SourceError(`${file}: index file not found`);
  const buf = fs.readFileSync(file);
  if (buf.length === 0 || buf.length % 8 !== 0) throw new SourceError(`${file}: index size ${buf.length} is not a non-zero multiple of 8 (uint64 offsets)`);
  const n = buf.length / 8;
  const out = new Float64Array(n + 1);
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const v = Number(buf.readBigUInt64LE(i * 8));
    if (v <= prev || v >= tokens) throw new SourceError(`${file}: offset #${i} (${v}) is not increasing or is past the token file's end (${tokens} tokens)`);
    out[i] = v;
    prev = v;
  }
  if (out[0] !== 0) throw new SourceError(`${file}: the first document offset must be 0`);
  out[n] = tokens;
  return out;
}
