/**
 * thompson: Gaussian Thompson sampling on the decrease of each domain's running-minimum
 * (smoothed) training loss — a non-stationary bandit (discounted statistics, as in
 * discounted Thompson sampling, Raj & Kalyani 2017, arXiv 1707.09727) with a reward chosen
 * to resist unlearnable noise.
 *
 * Reward. Per domain, the mean training loss of each report is smoothed by an EMA
 * (`lossSmoothing`, default 0.9) and its running minimum m_i is kept. The reward of a report
 * is the decrease of that minimum per sample of the domain in the report:
 *   g_i = (m_i(before) − m_i(after)) / max(count_i, B/(2K))
 * (the denominator floor stops a rarely served domain's noise from being blown up). A
 * running minimum only moves when the loss reaches a new low, so a noise domain — whose
 * loss never really decreases — earns ~nothing once its first fluctuations are behind it,
 * and re-learning after forgetting does not count twice.
 *
 * Posterior. Discounted sufficient statistics per domain (γ = `discount`, default 0.99):
 * n ← γn + 1, s ← γs + g, q ← γq + g²; mean μ = s/n, variance σ² = q/n − μ²; the draw is
 * θ_i ~ N(μ_i, σ_i²/n_i) (σ² pooled over domains until a domain has 2 reports).
 *
 * Weights. `draws` (default 128) joint draws, deterministic from (seed, step) through
 * `strategies/util/rng.ts`; a domain's weight is the fraction of draws in which it is the
 * best, mixed with uniform exploration `explore` (default 0.1): w = (1 − c)·frac + c/K.
 *
 * When it wins/loses: ignores noise (no new lows), but like all training-loss progress
 * signals it is drawn to memorisable boilerplate.
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { makeRng } from "./util/rng.js";
import { initialWeights, withPins } from "./util/pins.js";

const params = z
  .object({
    lossSmoothing: z.number().finite().min(0).max(0.999).default(0.9),
    discount: z.number().finite().min(0.5).max(1).default(0.99),
    draws: z.number().int().min(1).max(10_000).default(128),
    explore: z.number().finite().min(0).max(1).default(0.1),
  })
  .strict();

export type ThompsonParams = z.infer<typeof params>;

export interface ThompsonState {
  /** EMA of the mean training loss per domain (null before the first report). */
  readonly ema: (number | null)[];
  /** Running minimum of `ema`. */
  readonly min: (number | null)[];
  /** Discounted count, sum and sum of squares of rewards. */
  readonly n: number[];
  readonly s: number[];
  readonly q: number[];
}

/** Standard normal from two uniforms (Box–Muller). */
function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Fraction of `draws` Gaussian posterior draws in which each arm is best. Arms with no
 * observation draw from the widest posterior seen, so they keep being explored.
 */
export function thompsonShares(mean: readonly number[], sd: readonly number[], draws: number, rand: () => number): number[] {
  const K = mean.length;
  const wins = new Array<number>(K).fill(0);
  for (let k = 0; k < draws; k++) {
    let best = 0;
    let bestV = -Infinity;
    for (let i = 0; i < K; i++) {
      const v = mean[i]! + sd[i]! * normal(rand);
      if (v > bestV) {
        bestV = v;
        best = i;
      }
    }
    wins[best]!++;
  }
  return wins.map((x) => x / draws);
}

export const thompsonStrategy: Strategy<ThompsonParams, ThompsonState> = {
  name: "thompson",
  summary: "Discounted Gaussian Thompson sampling on the decrease of each domain's running-minimum smoothed loss.",
  params,
  init(ctx) {
    const K = ctx.domains.length;
    const z0 = () => new Array<number>(K).fill(0);
    return {
      state: { ema: new Array<number | null>(K).fill(null), min: new Array<number | null>(K).fill(null), n: z0(), s: z0(), q: z0() },
      weights: finalizeWeights(new Array<number>(K).fill(1), withPins(ctx.domains, initialWeights(ctx.domains, undefined))),
    };
  },
  update(ctx, p, state, sig) {
    const K = ctx.domains.length;
    const ema = state.ema.slice();
    const min = state.min.slice();
    const n = state.n.map((x) => x * p.discount);
    const s = state.s.map((x) => x * p.discount);
    const q = state.q.map((x) => x * p.discount);
    const denomFloor = ctx.batchSize / (2 * Math.max(1, K));
    for (let i = 0; i < K; i++) {
      const c = sig.count[i] ?? 0;
      if (!(c > 0)) continue;
      const loss = (sig.lossSum[i] ?? 0) / c;
      if (!Number.isFinite(loss)) continue;
      const prevEma = ema[i];
      const e = prevEma === null || prevEma === undefined ? loss : p.lossSmoothing * prevEma + (1 - p.lossSmoothing) * loss;
      ema[i] = e;
      const prevMin = min[i];
      if (prevMin === null || prevMin === undefined) {
        min[i] = e;
        continue;
      }
      const m = Math.min(prevMin, e);
      min[i] = m;
      const g = (prevMin - m) / Math.max(c, denomFloor);
      n[i]! += 1;
      s[i]! += g;
      q[i]! += g * g;
    }
    const means = n.map((ni, i) => (ni > 0 ? s[i]! / ni : 0));
    const vars = n.map((ni, i) => (ni > 0 ? Math.max(0, q[i]! / ni - means[i]! ** 2) : 0));
    const known = vars.filter((v, i) => n[i]! >= 2 && v > 0);
    const pooled = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 0;
    if (!(pooled > 0)) return { state: { ema, min, n, s, q }, weights: null };
    const sd = n.map((ni, i) => {
      const v = ni >= 2 && vars[i]! > 0 ? vars[i]! : pooled;
      return Math.sqrt(v / Math.max(ni, 1));
    });
    const shares = thompsonShares(means, sd, p.draws, makeRng(ctx.seed, sig.step, 0x7e));
    const raw = shares.map((x) => (1 - p.explore) * x + p.explore / K);
    // A pinned domain keeps at least its initial (uniform) share.
    return { state: { ema, min, n, s, q }, weights: finalizeWeights(raw, withPins(ctx.domains, initialWeights(ctx.domains, undefined))) };
  },
};
