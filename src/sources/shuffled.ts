/**
 * A source whose samples are their own symbols in a keyed random order: the code points of a
 * text, the tokens of a token sample. For mixflow's structure signal (strategies/mixflow.ts):
 * a model's loss on a shuffled probe minus its loss on the probe in order is what order is
 * worth to it in that domain. Real text, code, logs and tables lose most of their
 * predictability when shuffled; random symbols (base64, hex, digits) and text that is already
 * shuffled lose nothing, however well their alphabet has been learnt — which probe
 * learnability alone cannot tell in a short run (an alphabet is learnt as fast as text at first).
 *
 * Code points, not bytes, for text: a UTF-8 sequence stays valid (a byte-level model still
 * sees whole characters), so what is destroyed is the order of characters, not their encoding.
 * Pure and deterministic: sample i's order depends on (key, i) only.
 */
import { fmix32 } from "../sampling/index.js";
import type { Source, SourceKind } from "./source.js";

export class ShuffledSource implements Source {
  readonly kind: SourceKind;
  readonly size: number;
  readonly sizeMeasure: number;
  readonly dtype: "uint16" | "uint32" | null;
  readonly windowTokens: number | null;
  readonly difficulty: Float64Array | null;

  /** Does not own `inner` (the in-order probes are served from it too). */
  constructor(
    private readonly inner: Source,
    private readonly key: number,
  ) {
    this.kind = inner.kind;
    this.size = inner.size;
    this.sizeMeasure = inner.sizeMeasure;
    this.dtype = inner.dtype;
    this.windowTokens = inner.windowTokens;
    this.difficulty = inner.difficulty;
  }

  payload(i: number): Buffer {
    const p = this.inner.payload(i);
    if (this.kind === "text") return Buffer.from(shuffleCodePoints(p.toString("utf8"), this.seedOf(i)), "utf8");
    const out = Buffer.from(p); // a copy: never shuffle the inner source's bytes in place
    shuffleItems(out, 0, out.length, this.dtype === "uint16" ? 2 : 4, this.seedOf(i));
    return out;
  }

  copyWindow(i: number, dst: Buffer, offset: number): number {
    const n = this.inner.copyWindow(i, dst, offset);
    shuffleItems(dst, offset, n, this.dtype === "uint16" ? 2 : 4, this.seedOf(i));
    return n;
  }

  textSample(max: number): string[] {
    const n = Math.min(max, this.size);
    const enc = this.kind === "text" ? "utf8" : "latin1";
    return Array.from({ length: n }, (_, k) => this.payload(Math.floor((k * this.size) / n)).toString(enc));
  }

  close(): void {}

  private seedOf(i: number): number {
    return fmix32(fmix32(this.key ^ 0x5f3759df) ^ i);
  }
}

/** xorshift32 stream from a seed (never 0). */
function stream(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The code points of `text` in a random order fixed by `seed` (Fisher–Yates). */
export function shuffleCodePoints(text: string, seed: number): string {
  const cps = Array.from(text);
  const next = stream(seed);
  for (let i = cps.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = cps[i]!;
    cps[i] = cps[j]!;
    cps[j] = t;
  }
  return cps.join("");
}

/** Shuffle the `width`-byte items of buf[offset, offset + bytes) in place (Fisher–Yates, fixed by `seed`). */
export function shuffleItems(buf: Buffer, offset: number, bytes: number, width: number, seed: number): void {
  const n = Math.floor(bytes / width);
  const next = stream(seed);
  const tmp = Buffer.allocUnsafe(width);
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    if (i === j) continue;
    const a = offset + i * width;
    const b = offset + j * width;
    buf.copy(tmp, 0, a, a + width);
    buf.copy(buf, a, b, b + width);
    tmp.copy(buf, b, 0, width);
  }
}
