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
  return out.map((x) => x / sum);
}

/**
 * Project a distribution onto the box [lo_i, hi_i] ∩ simplex by iterative clamping
 * ("water filling"): clamp, then rescale the free coordinates to absorb the rest.
 * Bounds are validated at config time so that sum(lo) <= 1 <= sum(hi).
 */
export function clampToBounds(w: readonly number[], lo: readonly number[], hi: readonly number[]): number[] {
  const n = w.length;
  const out = w.slice();
  const fixed = new Array<boolean>(n).fill(false);
  for (let iter = 0; iter <= n; iter++) {
    let fixedMass = 0;
    let freeMass = 0;
    for (let i = 0; i < n; i++) {
      if (fixed[i]) fixedMass += out[i]!;
      else freeMass += out[i]!;
    }
    const target = 1 - fixedMass;
    let changed = false;
    for (let i = 0; i < n; i++) {
      if (fixed[i]) continue;
      const v = freeMass > 0 ? (out[i]! * target) / freeMass : target / countFree(fixed);
      out[i] = v;
    }
    for (let i = 0; i < n; i++) {
      if (fixed[i]) continue;
      if (out[i]! < lo[i]!) {
        out[i] = lo[i]!;
        fixed[i] = true;
        changed = true;
      } else if (out[i]! > hi[i]!) {
        out[i] = hi[i]!;
        fixed[i] = true;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const s = out.reduce((a, b) => a + b, 0);
  return out.map((x) => x / s);
}

function countFree(fixed: readonly boolean[]): number {
  let c = 0;
  for (const f of fixed) if (!f) c++;
  return Math.max(1, c);
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
