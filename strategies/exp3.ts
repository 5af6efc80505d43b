/**
 * exp3: Online Data Mixing (ODM), Albalak, Pan, Raffel & Wang 2023, "Efficient Online Data
 * Mixing For Language Model Pre-Training", arXiv 2312.02406 (Algorithm 1).
 *
 * Each domain is an arm of an adversarial bandit (EXP3). The reward of a domain is its
 * training loss — a high loss means there is still much to learn — importance-weighted by
 * the probability the domain was sampled with, and smoothed by a moving average:
 *
 *   ε_t  = min(1/K, sqrt(ln K / (K·t)))
 *   R̂_i ← α·R̂_i + (1 − α)·L_i / π_{t−1}(i)        (for each domain i reported at step t)
 *   π_t(i) = (1 − K·ε_t) · exp(ε_{t−1}·R̂_i) / Σ_j exp(ε_{t−1}·R̂_j) + ε_t
 *
 * where t counts steps from 1 and L_i is the mean training loss of domain i in the step.
 * ODM samples one domain per mini-batch; mixflow serves mixed batches, so every domain in
 * the step is observed and updated (the "mixed minibatches" variant of the authors' code).
 *
 * Defaults: `smoothing` α = 0.9; `warmupSteps` = 2000 (the authors' Pile scripts: weights
 * stay at the initial mixture for 2000 steps while rewards accumulate); update every step;
 * `initial` = uniform unless given as a name → weight map.
 *
 * When it wins/loses: raw loss rewards an unlearnable high-loss domain (random noise), so
 * ODM drifts towards noise; it avoids memorised boilerplate (its loss is low).
 */
import { z } from "zod";
import type { Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { initialWeights } from "./util/pins.js";

const params = z
  .object({
    smoothing: z.number().finite().min(0).max(1).default(0.9),
    warmupSteps: z.number().int().nonnegative().default(2000),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict();

export type Exp3Params = z.infer<typeof params>;

/** Plain-JSON state: smoothed importance-weighted rewards and the last distribution. */
export interface Exp3State {
  readonly rewards: number[];
  readonly probs: number[];
  /** ε_{t−1}: the exploration rate of the previous update (softmax temperature). */
  readonly prevEps: number;
}

/** ODM's exploration rate ε_t = min(1/K, sqrt(ln K / (K t))), t >= 1. */
export function exp3Epsilon(K: number, t: number): number {
  if (K <= 1) return 1;
  return Math.min(1 / K, Math.sqrt(Math.log(K) / (K * Math.max(1, t))));
}

/** π = (1 − Kε)·softmax(temp·R̂) + ε, computed stably (max subtracted). */
export function exp3Distribution(rewards: readonly number[], temp: number, eps: number): number[] {
  const K = rewards.length;
  const z = rewards.map((r) => temp * r);
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => (1 - K * eps) * (x / s) + eps);
}


export const exp3Strategy: Strategy<Exp3Params, Exp3State> = {
  name: "exp3",
  summary: "Online Data Mixing (Albalak et al. 2023): EXP3 bandit rewarded by smoothed importance-weighted training loss.",
  params,
  init(ctx, p) {
    const w = initialWeights(ctx.domains, p.initial);
    const K = ctx.domains.length;
    return { state: { rewards: new Array<number>(K).fill(0), probs: w, prevEps: 1 / Math.max(1, K) }, weights: w };
  },
  update(ctx, p, state, sig) {
    const K = ctx.domains.length;
    const a = p.smoothing;
    const rewards = state.rewards.map((r, i) => {
      const c = sig.count[i] ?? 0;
      if (!(c > 0)) return r;
      const loss = (sig.lossSum[i] ?? 0) / c;
      const pi = Math.max(state.probs[i] ?? 0, 1e-6);
      const next = a * r + ((1 - a) * loss) / pi;
      return Number.isFinite(next) ? next : r;
    });
    const t = sig.step + 1;
    const eps = exp3Epsilon(K, t);
    if (sig.step < p.warmupSteps) {
      // Warm-up: learn rewards on the initial mixture, keep serving it.
      return { state: { rewards, probs: state.probs, prevEps: eps }, weights: null };
    }
    const raw = exp3Distribution(rewards, state.prevEps, eps);
    const w = finalizeWeights(raw, ctx.domains);
    return { state: { rewards, probs: w, prevEps: eps }, weights: w };
  },
};
