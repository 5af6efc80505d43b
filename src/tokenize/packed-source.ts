/**
 * Tokenized text packed into training windows. The split's documents, each followed by EOS,
 * form one token stream (file after file, as tokenized at index time) that is read as a
 * ring: window i is the seqLen + 1 tokens starting at i·seqLen, wrapping past the end to
 * the start. Windows ignore document boundaries, so there is no document-start bias, and
 * with ceil(T / seqLen) windows every token of every document is in some window (none is
 * dropped at the tail). The batch path is one or two copies from in-memory bytes.
 */
import { lastAtOrBelow } from "../util/search.js";
import { FileBytes, type Source, SourceError } from "../sources/index.js";

export interface PackedFile {
  /** Path of the `.tok` file. */
  readonly path: string;
  readonly tokens: number;
  readonly textBytes: number;
}

export class PackedTokenSource implements Source {
  readonly kind = "tokens" as const;
  readonly dtype: "uint16" | "uint32";
  readonly windowTokens: number;
  readonly difficulty = null;
  readonly size: number;
  readonly sizeMeasure: number;
  /** Tokens in the ring (EOS included). */
  readonly totalTokens: number;
  private readonly item: number;
  private readonly seqLen: number;
  private readonly files: FileBytes[];
  /** Token offset of each file in the ring, plus the total. */
  private readonly prefix: number[];

  constructor(files: readonly PackedFile[], dtype: "uint16" | "uint32", seqLen: number) {
    this.dtype = dtype;
    this.item = dtype === "uint16" ? 2 : 4;
    this.seqLen = seqLen;
    this.windowTokens = seqLen + 1;
    this.files = files.map((f) => new FileBytes(f.path, f.tokens * this.item));
    this.prefix = [0];
    for (const f of files) this.prefix.push(this.prefix[this.prefix.length - 1]! + f.tokens);
    this.totalTokens = this.prefix[this.prefix.length - 1]!;
    if (this.totalTokens === 0) throw new SourceError(`${files[0]?.path ?? "(no files)"}: no tokens`);
    this.size = Math.ceil(this.totalTokens / seqLen);
    this.sizeMeasure = this.totalTokens;
  }

  payload(i: number): Buffer {
    const out = Buffer.allocUnsafe(this.windowTokens * this.item);
    this.copyWindow(i, out, 0);
    return out;
  }

  copyWindow(i: number, dst: Buffer, offset: number): number {
    let t = (i * this.seqLen) % this.totalTokens;
    let left = this.windowTokens;
    let at = offset;
    while (left > 0) {
      const f = lastAtOrBelow(this.files.length, t, (k) => this.prefix[k]!);
      const inFile = t - this.prefix[f]!;
      const n = Math.min(left, this.prefix[f + 1]! - t);
      this.files[f]!.readInto(inFile * this.item, (inFile + n) * this.item, dst, at);
      at += n * this.item;
      left -= n;
      t = (t + n) % this.totalTokens;
    }
    return this.windowTokens * this.item;
  }

  textSample(max: number): string[] {
    const n = Math.min(max, this.size);
    return Array.from({ length: n }, (_, k) => this.payload(Math.floor((k * this.size) / n)).toString("latin1"));
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
