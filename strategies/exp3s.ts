/**
 * exp3s: EXP3.S with learning-progress rewards, Graves, Bellemare, Menick, Munos &
 * Kavukcuoglu 2017, "Automated Curriculum Learning for Neural Networks", arXiv 1704.03003.
 *
 * Reward: prediction gain, the decrease of a domain's loss caused by training on it. With
 * mixed batches we measure it as the decrease of the domain's mean training loss between
 * its two most recent reports, r_i = L_i(prev) − L_i(now).
 *
 * Rescaling (Graves §3): raw rewards are mapped into [−1, 1] by the 20th and 80th
 * percentiles q_lo, q_hi of the history of raw rewards, kept as a bounded reservoir sample
 * (Vitter's algorithm R, draws keyed by (seed, step, domain) so replay is exact):
 *   r̂ = −1 if r < q_lo;  1 if r > q_hi;  2(r − q_lo)/(q_hi − q_lo) − 1 otherwise.
 *
 * EXP3.S (Auer et al. 2002, as written in Graves et al.):
 *   π_t(i)   = (1 − ε)·exp(w_i)/Σ_j exp(w_j) + ε/K
 *   r̃_i     = (r̂_i + β) / π_t(i)                         (each domain reported in the step)
 *   w_{t+1,i} = log[(1 − α_t)·exp(w_i + η r̃_i) + α_t/(K − 1)·Σ_{j≠i} exp(w_j + η r̃_j)]
 * with α_t = 1/t (the weight-sharing term that lets the policy track non-stationary
 * progress). Weights are kept max-normalised (w − max w) so state stays finite.
 *
 * Defaults (the paper's): η = 1e−3, β = 0, ε = 0.05; `reservoirSize` 256 (the paper keeps
 * a reservoir of past rewards without fixing its size here; bounded so state is bounded).
 *
 * When it wins/loses: learning progress ignores unlearnable noise (zero expected progress)
 * but is drawn to memorisable boilerplate, whose training loss keeps falling as it is
 * repeated.
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { hashUnit } from "./util/rng.js";
import { initialWeights, withPins } from "./util/pins.js";

const params = z
  .object({
    eta: z.number().finite().positive().default(1e-3),
    beta: z.number().finite().min(0).default(0),
    epsilon: z.number().finite().min(0).max(1).default(0.05),
    /** α_t; null = 1/t as in the paper. */
    alpha: z.number().finite().min(0).max(1).nullable().default(null),
    reservoirSize: z.number().int().min(5).max(10_000).default(256),
  })
  .strict();

export type Exp3sParams = z.infer<typeof params>;

export interface Exp3sState {
  /** Log-weights, max-normalised to 0. */
  readonly w: number[];
  /** Last mean training loss per domain (null before its first report). */
  readonly lastLoss: (number | null)[];
  /** Reservoir sample of raw rewards and how many rewards have been offered to it. */
  readonly reservoir: number[];
  readonly seen: number;
  /** Number of updates folded in (t). */
  readonly t: number;
}

/** Linear-interpolated quantile of an unsorted list (q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = xs.slice().sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Graves et al.'s rescaling of a raw reward into [−1, 1] by the 20th/80th percentiles. */
export function rescaleReward(r: number, qLo: number, qHi: number): number {
  if (r < qLo) return -1;
  if (r > qHi) return 1;
  if (!(qHi > qLo)) return 0;
  return (2 * (r - qLo)) / (qHi - qLo) - 1;
}

/** The EXP3.S policy from log-weights. */
export function exp3sPolicy(w: readonly number[], epsilon: number): number[] {
  const K = w.length;
  const m = Math.max(...w);
  const e = w.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => (1 - epsilon) * (x / s) + epsilon / K);
}

export const exp3sStrategy: Strategy<Exp3sParams, Exp3sState> = {
  name: "exp3s",
  summary: "EXP3.S (Graves et al. 2017) rewarded by learning progress (per-domain loss decrease), quantile-rescaled.",
  params,
  init(ctx, p) {
    const K = ctx.domains.length;
    const w = new Array<number>(K).fill(0);
    return {
      state: { w, lastLoss: new Array<number | null>(K).fill(null), reservoir: [], seen: 0, t: 0 },
      weights: finalizeWeights(exp3sPolicy(w, p.epsilon), withPins(ctx.domains, initialWeights(ctx.domains, undefined))),
    };
  },
  update(ctx, p, state, sig) {
    const K = ctx.domains.length;
    const t = state.t + 1;
    const pi = exp3sPolicy(state.w, p.epsilon);
    const lastLoss = state.lastLoss.slice();
    const raw: (number | null)[] = new Array<number | null>(K).fill(null);
    for (let i = 0; i < K; i++) {
      const c = sig.count[i] ?? 0;
      if (!(c > 0)) continue;
      const loss = (sig.lossSum[i] ?? 0) / c;
      if (!Number.isFinite(loss)) continue;
      const prev = lastLoss[i];
      if (prev !== null && prev !== undefined) raw[i] = prev - loss;
      lastLoss[i] = loss;
    }
    // Reservoir (algorithm R): the first `size` rewards fill it, then reward number n
    // replaces a random slot with probability size/n.
    const reservoir = state.reservoir.slice();
    let seen = state.seen;
    for (let i = 0; i < K; i++) {
      const r = raw[i];
      if (r === null || r === undefined) continue;
      seen++;
      if (reservoir.length < p.reservoirSize) reservoir.push(r);
      else {
        const j = Math.floor(hashUnit(ctx.seed, sig.step, i, 0xe3) * seen);
        if (j < p.reservoirSize) reservoir[j] = r;
      }
    }
    const qLo = quantile(reservoir, 0.2);
    const qHi = quantile(reservoir, 0.8);
    const alpha = p.alpha ?? 1 / t;
    const g = state.w.map((wi, i) => {
      const r = raw[i];
      if (r === null || r === undefined) return wi;
      const rt = (rescaleReward(r, qLo, qHi) + p.beta) / Math.max(pi[i]!, 1e-9);
      return wi + p.eta * rt;
    });
    // Weight sharing in log space: log[(1−α) e^{g_i} + α/(K−1) Σ_{j≠i} e^{g_j}].
    const m = Math.max(...g);
    const e = g.map((x) => Math.exp(x - m));
    const total = e.reduce((a, b) => a + b, 0);
    let w = e.map((ei) => m + Math.log((1 - alpha) * ei + (K > 1 ? (alpha / (K - 1)) * (total - ei) : 0)));
    const wm = Math.max(...w);
    w = w.map((x) => {
      const d = x - wm;
      return Number.isNaN(d) ? 0 : Math.max(d, -700);
    });
    return {
      state: { w, lastLoss, reservoir, seen, t },
      weights: finalizeWeights(exp3sPolicy(w, p.epsilon), withPins(ctx.domains, initialWeights(ctx.domains, undefined))),
    };
  },
};
