/**
 * self-paced: loss-based self-paced curriculum at domain level.
 *
 * Paper: Kumar, Packer, Koller, "Self-Paced Learning for Latent Variable Models", NeurIPS
 * 2010. SPL trains on the samples whose loss is below a threshold λ ("easy" samples,
 * v_i = 1[ℓ_i < λ]) and anneals λ upward by a factor μ (the paper's μ = 1.3) until every
 * sample is included. (≤ rather than < so that λ0 = the median makes at least half easy.)
 *
 * mixflow cannot pick individual samples — batch composition must stay a replayable function
 * of the versions, and strategy state must stay bounded — so the rule is expressed per domain:
 *   e_d   = fraction of the step's reported samples of domain d with loss ≤ λ
 *           (per-sample losses from `StepSignals.samples`; without them, 1[mean loss_d ≤ λ])
 *   f_d   ← β f_d + (1 − β) e_d                 (EMA over steps: "recent samples", O(1) state)
 *   competence_d = max(minFraction, f_d)        (the easiest share of the difficulty-ordered
 *                                                split the server may draw from)
 *   weight_d ∝ base_d · max(minFraction, f_d)   (domains that are mostly easy get more)
 *   every `growEvery` steps: λ ← λ · μ          (the self-paced annealing)
 * λ0 is `lambda0`, or the `initialQuantile` (default the median) of the first step's
 * per-sample losses — so about half the samples start "easy", as SPL's initial K is tuned to.
 * Once every domain is fully easy (f_d ≈ 1) the weights are the base weights and competence 1.
 *
 * Defaults: μ = 1.3 (paper), growEvery 100, β = 0.9, minFraction 0.05, initialQuantile 0.5,
 * every 50 (steps between versions), base weights `weights` (uniform if omitted).
 * State: λ, the step count and k EMA values — bounded whatever the run length.
 */
import { z } from "zod";
import type { StepSignals, Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { initialWeights, withPins } from "./util/pins.js";

const params = z
  .object({
    mu: z.number().finite().min(1).default(1.3),
    growEvery: z.number().int().positive().default(100),
    lambda0: z.number().finite().positive().optional(),
    initialQuantile: z.number().finite().gt(0).max(1).default(0.5),
    beta: z.number().finite().min(0).max(0.9999).default(0.9),
    minFraction: z.number().finite().positive().max(1).default(0.05),
    every: z.number().int().positive().default(50),
    weights: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict();

export type SelfPacedParams = z.infer<typeof params>;

export interface SelfPacedState {
  /** Current threshold; null until the first losses fix λ0. */
  lambda: number | null;
  /** Steps since λ was set (for the growth schedule). */
  steps: number;
  /** EMA of each domain's easy fraction; null until seen. */
  easy: (number | null)[];
  sinceEmit: number;
}

/** The q-quantile (nearest rank) of finite values; null if none. */
export function quantile(xs: readonly number[], q: number): number | null {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
}

/** Per-domain easy fraction of one step under threshold λ (null where the domain is absent). */
export function easyFractions(k: number, signals: StepSignals, lambda: number): (number | null)[] {
  if (signals.samples) {
    const below = new Array<number>(k).fill(0);
    const n = new Array<number>(k).fill(0);
    const { domain, loss } = signals.samples;
    for (let i = 0; i < domain.length; i++) {
      const d = domain[i]!;
      const l = loss[i]!;
      if (d < 0 || d >= k || !Number.isFinite(l)) continue;
      n[d]!++;
      if (l <= lambda) below[d]!++;
    }
    return n.map((c, d) => (c > 0 ? below[d]! / c : null));
  }
  return Array.from({ length: k }, (_, d) => {
    const c = signals.count[d] ?? 0;
    if (!(c > 0)) return null;
    return (signals.lossSum[d] ?? 0) / c <= lambda ? 1 : 0;
  });
}

export const selfPacedStrategy: Strategy<SelfPacedParams, SelfPacedState> = {
  name: "self-paced",
  summary: "Self-paced curriculum (Kumar et al. 2010) per domain: easy share under a growing loss threshold sets competence and weight.",
  params,
  init(ctx, p) {
    const base = initialWeights(ctx.domains, p.weights);
    const k = ctx.domains.length;
    return {
      state: { lambda: p.lambda0 ?? null, steps: 0, easy: new Array<number | null>(k).fill(null), sinceEmit: 0 },
      weights: base,
      competence: new Array<number>(k).fill(p.minFraction),
    };
  },
  update(ctx, p, state, signals) {
    const k = ctx.domains.length;
    let lambda = state.lambda;
    if (lambda === null) {
      const losses = signals.samples
        ? signals.samples.loss
        : signals.lossSum.map((s, i) => ((signals.count[i] ?? 0) > 0 ? s / signals.count[i]! : NaN));
      const q = quantile(losses, p.initialQuantile);
      lambda = q;
    }
    if (lambda === null) return { state, weights: null };
    const e = easyFractions(k, signals, lambda);
    const easy = state.easy.map((old, d) => {
      const x = e[d];
      if (x === null || x === undefined) return old;
      return old === null ? x : p.beta * old + (1 - p.beta) * x;
    });
    let steps = state.steps + 1;
    if (steps >= p.growEvery) {
      steps = 0;
      lambda = Math.min(lambda * p.mu, Number.MAX_VALUE);
    }
    const sinceEmit = state.sinceEmit + 1;
    const next: SelfPacedState = { lambda, steps, easy, sinceEmit };
    if (sinceEmit < p.every) return { state: next, weights: null };
    const base = initialWeights(ctx.domains, p.weights);
    const frac = easy.map((f) => Math.max(p.minFraction, Math.min(1, f ?? p.minFraction)));
    const weights = finalizeWeights(
      base.map((b, d) => b * frac[d]!),
      withPins(ctx.domains, base),
    );
    return { state: { ...next, sinceEmit: 0 }, weights, competence: frac };
  },
};
