/**
 * Deterministic randomness for strategies. A strategy that needs random numbers derives
 * them from (run seed, step, purpose) so that replay produces the same draws; there is no
 * hidden generator state to journal.
 */

/** SplitMix64-style mixing of a 53-bit-safe key into a float in [0, 1). */
export function hashUnit(...parts: readonly number[]): number {
  let h = 0x9e3779b97f4a7c15n;
  for (const p of parts) {
    h ^= BigInt.asUintN(64, BigInt(Math.floor(p)));
    h = BigInt.asUintN(64, (h ^ (h >> 30n)) * 0xbf58476d1ce4e5b9n);
    h = BigInt.asUintN(64, (h ^ (h >> 27n)) * 0x94d049bb133111ebn);
    h ^= h >> 31n;
  }
  return Number(h >> 11n) / 2 ** 53;
}

/** A small seeded generator (xoshiro128**) for strategies that draw many numbers at once. */
export function makeRng(...seedParts: readonly number[]): () => number {
  let a = Math.floor(hashUnit(...seedParts, 1) * 2 ** 32) >>> 0;
  let b = Math.floor(hashUnit(...seedParts, 2) * 2 ** 32) >>> 0;
  let c = Math.floor(hashUnit(...seedParts, 3) * 2 ** 32) >>> 0;
  let d = Math.floor(hashUnit(...seedParts, 4) * 2 ** 32) >>> 0 || 1;
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r / 2 ** 32;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
