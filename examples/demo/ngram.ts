/**
 * A tiny online byte-level language model for the demo trainer: interpolated unigram +
 * bigram + hashed trigram counts with add-k smoothing. Its cross-entropy (bits per byte)
 * on each document is a real, cheap training loss: it falls on learnable text and stays
 * near 6 bits/byte on base64 noise, which is exactly what an adaptive mixer should notice.
 */
const TRI_BUCKETS = 1 << 14;

export class ByteNgram {
  private readonly uni = new Float64Array(256);
  private uniTotal = 0;
  private readonly bi = new Float64Array(256 * 256);
  private readonly biTotal = new Float64Array(256);
  private readonly tri = new Float64Array(TRI_BUCKETS * 256);
  private readonly triTotal = new Float64Array(TRI_BUCKETS);

  private prob(a: number, b: number, c: number): number {
    const pu = (this.uni[c]! + 0.5) / (this.uniTotal + 128);
    const pb = (this.bi[b * 256 + c]! + pu) / (this.biTotal[b]! + 1);
    const h = ((a * 31 + b) * 2654435761) >>> 18;
    const pt = (this.tri[h * 256 + c]! + pb) / (this.triTotal[h]! + 1);
    return pt;
  }

  /** Mean bits per byte of `text` under the model; `learn` also updates the counts. */
  crossEntropy(text: string, learn: boolean): number {
    const bytes = Buffer.from(text, "utf8");
    if (bytes.length === 0) return 0;
    let bits = 0;
    let a = 0;
    let b = 0;
    for (const c of bytes) {
      bits -= Math.log2(this.prob(a, b, c));
      if (learn) {
        this.uni[c]!++;
        this.uniTotal++;
        this.bi[b * 256 + c]!++;
        this.biTotal[b]!++;
        const h = ((a * 31 + b) * 2654435761) >>> 18;
        this.tri[h * 256 + c]!++;
        this.triTotal[h]!++;
      }
      a = b;
      b = c;
    }
    return bits / bytes.length;
  }
}
