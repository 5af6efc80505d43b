/**
 * A keyed pseudo-random permutation of [0, n) that never materialises an array of size n:
 * a 4-round balanced Feistel network over the smallest even-bit-width power of two >= n,
 * with cycle walking to stay inside [0, n). Expected walk length < 4, and the map is a
 * bijection for every key, so walking positions 0..n-1 of an epoch visits every sample
 * exactly once — draws without replacement inside an epoch (DESIGN.md, determinism 4).
 *
 * Domains up to 2^52 samples are supported; the round function works on 26-bit halves
 * with 32-bit integer hashing, so it is exact in double arithmetic.
 */
import { fmix32, mix } from "./hash.js";

export class Permutation {
  readonly n: number;
  private readonly halfBits: number;
  private readonly halfSize: number;
  private readonly keys: Uint32Array;

  constructor(n: number, key: number) {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 52) throw new RangeError(`permutation size ${n} out of range`);
    this.n = n;
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.halfBits = bits / 2;
    this.halfSize = 2 ** this.halfBits;
    this.keys = new Uint32Array(4);
    let k = fmix32(key >>> 0);
    for (let r = 0; r < 4; r++) {
      k = mix(k, r + 1);
      this.keys[r] = k;
    }
  }

  /** The image of position i (0 <= i < n). */
  at(i: number): number {
    if (this.n === 1) return 0;
    let x = i;
    do x = this.encrypt(x);
    while (x >= this.n);
    return x;
  }

  private encrypt(x: number): number {
    const size = this.halfSize;
    let l = Math.floor(x / size);
    let r = x - l * size;
    for (let round = 0; round < 4; round++) {
      const f = this.round(r, this.keys[round]!);
      const nl = r;
      r = (l + f) % size; // modular addition keeps it a bijection for any half width
      l = nl;
    }
    return l * size + r;
  }

  private round(r: number, key: number): number {
    // Halves are at most 26 bits wide (n <= 2^52), so r fits one 32-bit word.
    return mix(key, r) % this.halfSize;
  }

}
