/**
 * Binary search over sorted numeric arrays: the one helper behind "which file holds
 * sample i" (prefix sums of file sizes) and "which version is in force at step s".
 */

/** The last index i with `key(i) <= x`, for `key` non-decreasing on [0, n); 0 if none. */
export function lastAtOrBelow(n: number, x: number, key: (i: number) => number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (key(mid) <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
