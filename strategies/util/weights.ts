/**
 * Turning raw scores into a valid weight vector: finite, non-negative, summing to 1, and
 * inside each domain's [minWeight, maxWeight]. Every strategy ends with `finalizeWeights`
 * so no strategy can emit NaN, negative or unnormalised weights whatever its signals.
 */
import type { DomainInfo } from "../types.js";

/** Replace non-finite or negative entries by 0; if nothing is left, fall back to uniform. */
export function sanitize(raw: readonly number[]): number[] {
  const out = raw.map((x) => (Number.isFinite(x) && x > 0 ? x : 0));
  const sum = out.reduce((a, b) => a + b, 0);
  if (!(sum > 0) || !Number.isFinite(sum)) return raw.map(() => 1 / raw.length);
  // Already a distribution (up to rounding): keep the values bit for bit, so finalizing a
  // final vector again (replay, transfer) cannot change a single batch.
  if (Math.abs(sum - 1) <= 1e-12) return out;
  return out.map((x) => x / sum);
}

/**
 * Project a distribution onto {Σw = 1, lo ≤ w ≤ hi} by scaling and clamping: find λ with
 * Σ clamp(λ·w_i, lo_i, hi_i) = 1 (the sum is monotone in λ) by bisection. Free coordinates
 * keep their ratios, clamped ones sit on their bound, and the result is inside the box
 * exactly — unlike one-pass clamp-and-renormalise, which can over-commit mass when low
 * and high bounds bind together. Bounds are validated at config time so that
 * Σlo ≤ 1 ≤ Σhi. Fast path: an already feasible vector is returned as it is.
 */
export function clampToBounds(w: readonly number[], lo: readonly number[], hi: readonly number[]): number[] {
  const n = w.length;
  let feasible = true;
  for (let i = 0; i < n && feasible; i++) feasible = w[i]! >= lo[i]! && w[i]! <= hi[i]!;
  if (feasible) return w.slice();
  const mass = (l: number): number => {
    let m = 0;
    for (let i = 0; i < n; i++) m += Math.min(hi[i]!, Math.max(lo[i]!, l * w[i]!));
    return m;
  };
  let a = 0;
  let b = 1;
  while (mass(b) < 1 && b < 1e300) b *= 2;
  for (let it = 0; it < 64 && b - a > b * 1e-15; it++) {
    const m = (a + b) / 2;
    if (mass(m) < 1) a = m;
    else b = m;
  }
  const out = w.map((x, i) => Math.min(hi[i]!, Math.max(lo[i]!, b * x)));
  // Zero-weight coordinates sit at lo for every λ; share any mass still missing (or in
  // excess) in proportion to each coordinate's room inside its bounds.
  const s = out.reduce((acc, x) => acc + x, 0);
  if (Math.abs(s - 1) > 1e-12) {
    const room = out.map((x, i) => (s < 1 ? hi[i]! - x : x - lo[i]!));
    const total = room.reduce((acc, x) => acc + x, 0);
    if (total > 0) return out.map((x, i) => x + ((1 - s) * room[i]!) / total);
  }
  return out;
}

/** Sanitize, then apply the domains' bounds. The one exit every strategy's weights pass. */
export function finalizeWeights(raw: readonly number[], domains: readonly DomainInfo[]): number[] {
  return clampToBounds(
    sanitize(raw),
    domains.map((d) => d.minWeight),
    domains.map((d) => d.maxWeight),
  );
}

/** Uniform distribution over n domains. */
export function uniform(n: number): number[] {
  return new Array<number>(n).fill(1 / n);
}

/** Mix `w` with uniform: (1 - c) * w + c / n (the smoothing used by DoReMi and EXP3). */
export function smoothWithUniform(w: readonly number[], c: number): number[] {
  const n = w.length;
  return w.map((x) => (1 - c) * x + c / n);
}
