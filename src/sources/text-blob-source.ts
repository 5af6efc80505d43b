/**
 * Text documents served from index-time blobs (see src/tokenize/jobs.ts "text" jobs): the
 * random-access form of compressed JSONL, Parquet and Arrow text. One blob and one offsets
 * array per file; the files of a split are one sequence of samples.
 */
import * as fs from "node:fs";
import { internal } from "../errors.js";
import { lastAtOrBelow } from "../util/search.js";
import { FileBytes } from "./file-bytes.js";
import type { Source } from "./source.js";

interface Blob {
  bytes: FileBytes;
  offsets: Float64Array;
}

export class TextBlobSource implements Source {
  readonly kind = "text" as const;
  readonly dtype = null;
  readonly windowTokens = null;
  readonly difficulty = null;
  readonly size: number;
  readonly sizeMeasure: number;
  private readonly blobs: Blob[];
  private readonly prefix: number[];

  /** `bases`: job output paths (without extension), in file order. */
  constructor(bases: readonly string[]) {
    this.blobs = bases.map((b) => {
      const raw = fs.readFileSync(`${b}.off`);
      const offsets = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      return { bytes: new FileBytes(`${b}.docs`, fs.statSync(`${b}.docs`).size), offsets };
    });
    this.prefix = [0];
    for (const b of this.blobs) this.prefix.push(this.prefix[this.prefix.length - 1]! + b.offsets.length - 1);
    this.size = this.prefix[this.prefix.length - 1]!;
    this.sizeMeasure = this.blobs.reduce((a, b) => a + b.bytes.size, 0);
  }

  payload(i: number): Buffer {
    const f = lastAtOrBelow(this.blobs.length, i, (k) => this.prefix[k]!);
    const b = this.blobs[f]!;
    const j = i - this.prefix[f]!;
    return b.bytes.slice(b.offsets[j]!, b.offsets[j + 1]!);
  }

  copyWindow(): number {
    throw internal("copyWindow on a text source: text sources have no fixed windows (a caller bug)");
  }

  textSample(max: number): string[] {
    const n = Math.min(max, this.size);
    return Array.from({ length: n }, (_, k) => this.payload(Math.floor((k * this.size) / n)).toString("utf8"));
  }

  close(): void {
    for (const b of this.blobs) b.bytes.close();
  }
}
