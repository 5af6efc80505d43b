/**
 * A source that shows a subset of another source's samples under indices 0..size-1: the
 * train split minus a carved holdout, or the holdout's probe documents as an eval split.
 * Sample indices in batches, exports and replays are indices of this view.
 */
import { keptIndex } from "./holdout.js";
import type { Source, SourceKind } from "./source.js";

export class SubsetSource implements Source {
  readonly kind: SourceKind;
  readonly size: number;
  readonly sizeMeasure: number;
  readonly dtype: "uint16" | "uint32" | null;
  readonly windowTokens: number | null;
  readonly difficulty: Float64Array | null;

  private constructor(
    private readonly inner: Source,
    size: number,
    /** View index -> inner index. */
    readonly toInner: (i: number) => number,
    /** Closing the view closes the inner source (one view owns it). */
    private readonly owns: boolean,
  ) {
    this.kind = inner.kind;
    this.size = size;
    this.dtype = inner.dtype;
    this.windowTokens = inner.windowTokens;
    // Bytes (or tokens) scale with the share of samples kept.
    this.sizeMeasure = inner.size > 0 ? Math.round((inner.sizeMeasure * size) / inner.size) : 0;
    this.difficulty = inner.difficulty ? Float64Array.from({ length: size }, (_, i) => inner.difficulty![toInner(i)]!) : null;
  }

  /** Every sample of `inner` except `excluded` (sorted ascending, distinct); owns `inner`. */
  static excluding(inner: Source, excluded: readonly number[]): SubsetSource {
    return new SubsetSource(inner, inner.size - excluded.length, (i) => keptIndex(excluded, i), true);
  }

  /**
   * Just the samples `indices` of `inner`, in that order; owns `inner` only when told (a
   * holdout carved from a train split shares it with the split's `excluding` view).
   */
  static picking(inner: Source, indices: readonly number[], owns = false): SubsetSource {
    return new SubsetSource(inner, indices.length, (i) => indices[i]!, owns);
  }

  payload(i: number): Buffer {
    return this.inner.payload(this.toInner(i));
  }

  copyWindow(i: number, dst: Buffer, offset: number): number {
    return this.inner.copyWindow(this.toInner(i), dst, offset);
  }

  textSample(max: number): string[] {
    const n = Math.min(max, this.size);
    const enc = this.kind === "text" ? "utf8" : "latin1";
    return Array.from({ length: n }, (_, k) => this.payload(Math.floor((k * this.size) / n)).toString(enc));
  }

  close(): void {
    if (this.owns) this.inner.close();
  }
}
