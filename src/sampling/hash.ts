/**
 * 32-bit integer hashing used to key permutations and slot orders. Pure integer math
 * (Math.imul), so it is identical on every platform and fast on the hot path.
 */

/** murmur3's 32-bit finalizer: a good avalanche on one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Combine a running hash with one more 32-bit word (order-sensitive). */
export function mix(h: number, x: number): number {
  return fmix32((h ^ Math.imul(x >>> 0, 0x9e3779b1)) + 0x7f4a7c15);
}

/** Hash a list of numbers; numbers above 2^32 contribute both halves. */
export function hashWords(...xs: readonly number[]): number {
  let h = 0x1b873593;
  for (const x of xs) {
    h = mix(h, x % 4294967296);
    h = mix(h, Math.floor(x / 4294967296));
  }
  return h;
}

/** Hash a string's UTF-16 code units (names used as keys). */
export function hashString(s: string): number {
  let h = 0x2545f491;
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return mix(h, s.length);
}
