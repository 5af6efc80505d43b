/**
 * A source is the train or eval split of one domain: one or more files seen as one
 * indexed sequence of samples. Sources are read-only and random-access; batch assembly
 * asks them for sample payloads by index.
 */
import { MixflowError } from "../errors.js";

export type SourceKind = "text" | "tokens";

export interface Source {
  readonly kind: SourceKind;
  /** Samples in one epoch. */
  readonly size: number;
  /** Bytes of text or tokens in the split (for size-based strategies such as temperature). */
  readonly sizeMeasure: number;
  /** uint16/uint32 for token sources. */
  readonly dtype: "uint16" | "uint32" | null;
  /** Fixed window length in tokens (windows mode), or null for variable-length samples. */
  readonly windowTokens: number | null;
  /** Per-sample difficulty, or null if the domain declares none. */
  readonly difficulty: Float64Array | null;
  /** Payload bytes of sample i: UTF-8 text, or little-endian token ids. */
  payload(i: number): Buffer;
  /** Copy a fixed-size window (windows mode) straight into dst at offset; returns bytes written. */
  copyWindow(i: number, dst: Buffer, offset: number): number;
  /** Up to `max` sample texts, deterministically spread over the split (for dedup/compression stats). */
  textSample(max: number): string[];
  close(): void;
}

/** A file-naming error for a source: which file, which line or byte offset, what is wrong. */
export class SourceError extends MixflowError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
    this.name = "SourceError";
  }
}
