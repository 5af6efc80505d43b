/**
 * exp3: Online Data Mixing (ODM), Albalak, Pan, Raffel & Wang 2023, "Efficient Online Data
 * Mixing For Language Model Pre-Training", arXiv 2312.02406 — as the authors ran it at 1B
 * scale with mixed minibatches (github.com/alon-albalak/online-data-mixing,
 * `scripts/train_1B_ema_0.5smoothing.sh`: `--data_sampling_method smoothed_mean
 * --mixed_minibatches true --data_sampling_smoothing_factor 0.5`, warm-up 2000, update every
 * step, initial weights = the Pile's original mixture). Their `SmoothedMeanWeightUpdater.
 * group_update` (megatron/data/data_sampling_utils.py), per step t (t counts completed
 * steps from 1), once t > warmupSteps:
 *
 *   ε_t   = min(1/K, sqrt(ln K / (K·t)))
 *   R̂_i  ← α·R̂_i + (1 − α)·exp(L_i)            for each domain i in the step (R̂ starts at 0)
 *   π_t(i) = (1 − K·ε_t) · R̂_i / Σ_j R̂_j + ε_t
 *
 * where L_i is domain i's mean training loss in the step. Every domain in a mixed batch is
 * observed every step, so there is no 1/π importance weight (the one-domain-per-batch EXP3
 * of the paper's Algorithm 1 needs it; the mixed-minibatch code does not use it), and the
 * distribution is the smoothed exponentiated mean normalised linearly (their code multiplies
 * by ε_{t−1} and divides by Σ R̂·ε_{t−1}, which cancels). During warm-up nothing is
 * updated: the scheduler does not call the updater, so R̂ stays 0 until step warmupSteps + 1.
 *
 * Defaults: `smoothing` α = 0.5, `warmupSteps` 2000, `initial` = the natural mixture (each
 * domain's share of the total train size, `DomainInfo.size`, the token count for token
 * files) unless given as a name → weight map.
 *
 * Deviations, each with why:
 * - R̂ is kept as log R̂ (null for 0) and normalised by a log-sum-exp: the same numbers, but
 *   exp(L) of a large loss cannot overflow the JSON state.
 * - L_i is the mean over the global batch. Their code all-reduces the per-domain loss sums
 *   across ranks but divides by the local count, which scales the reward by the world size.
 * - Pins and the domains' bounds apply to the served weights (`finalizeWeights`), as for
 *   every mixflow strategy; the internal π is theirs.
 *
 * When it wins/loses: raw loss rewards an unlearnable high-loss domain (random noise), so
 * ODM drifts towards noise; it avoids memorised boilerplate (its loss is low).
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { naturalMixture } from "./util/natural.js";
import { finalizeWeights } from "./util/weights.js";
import { initialWeights, withPins } from "./util/pins.js";

const params = z
  .object({
    smoothing: z.number().finite().min(0).max(1).default(0.5),
    warmupSteps: z.number().int().nonnegative().default(2000),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict();

export type Exp3Params = z.infer<typeof params>;

/** Plain-JSON state: log of the smoothed exponentiated mean loss per domain (null = 0). */
export interface Exp3State {
  readonly logR: (number | null)[];
}

/** ODM's exploration rate ε_t = min(1/K, sqrt(ln K / (K t))), t >= 1. */
export function exp3Epsilon(K: number, t: number): number {
  if (K <= 1) return 1;
  return Math.min(1 / K, Math.sqrt(Math.log(K) / (K * Math.max(1, t))));
}

/** log(a·e^x + b·e^y) for a, b ≥ 0, with x = null meaning e^x = 0. */
function logMix(a: number, x: number | null, b: number, y: number): number {
  if (x === null || a === 0) return Math.log(b) + y;
  if (b === 0) return Math.log(a) + x;
  const u = Math.log(a) + x;
  const v = Math.log(b) + y;
  const m = Math.max(u, v);
  return m + Math.log(Math.exp(u - m) + Math.exp(v - m));
}

/** π = (1 − Kε)·R̂/ΣR̂ + ε from log R̂ (null = 0); uniform ε·K-share if every R̂ is 0. */
export function odmDistribution(logR: readonly (number | null)[], eps: number): number[] {
  const K = logR.length;
  const known = logR.filter((x): x is number => x !== null);
  if (known.length === 0) return new Array<number>(K).fill(1 / K);
  const m = Math.max(...known);
  const e = logR.map((x) => (x === null ? 0 : Math.exp(x - m)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => (1 - K * eps) * (x / s) + eps);
}

export const exp3Strategy: Strategy<Exp3Params, Exp3State> = {
  name: "exp3",
  summary: "Online Data Mixing (Albalak et al. 2023), mixed minibatches: smoothed exponentiated mean loss, from the natural mixture.",
  params,
  init(ctx, p) {
    const w = initialWeights(ctx.domains, p.initial ?? naturalMixture(ctx.domains));
    return { state: { logR: new Array<number | null>(ctx.domains.length).fill(null) }, weights: finalizeWeights(w, withPins(ctx.domains, w)) };
  },
  update(ctx, p, state, sig) {
    const K = ctx.domains.length;
    const t = sig.step + 1;
    if (t <= p.warmupSteps) return { state, weights: null };
    const a = p.smoothing;
    // A state from before the ODM rework (rewards/probs, journals written before 8d28ef9)
    // has no logR: the smoothed estimate starts afresh, so recovered runs keep adapting.
    const prev: readonly (number | null)[] = Array.isArray(state.logR) && state.logR.length === K ? state.logR : new Array<number | null>(K).fill(null);
    const logR = prev.map((r, i) => {
      const c = sig.count[i] ?? 0;
      if (!(c > 0)) return r;
      const loss = (sig.lossSum[i] ?? 0) / c;
      if (!Number.isFinite(loss)) return r;
      const next = logMix(a, r, 1 - a, loss);
      return Number.isFinite(next) ? next : r;
    });
    const raw = odmDistribution(logR, exp3Epsilon(K, t));
    const init = initialWeights(ctx.domains, p.initial ?? naturalMixture(ctx.domains));
    return { state: { logR }, weights: finalizeWeights(raw, withPins(ctx.domains, init)), reason: exp3Reason(ctx.domains, logR) };
  },
};

/** Which domains' smoothed losses set the new weights (the highest gains, the lowest loses). */
function exp3Reason(domains: readonly { name: string }[], logR: readonly (number | null)[]): string {
  let hi = -1;
  let lo = -1;
  logR.forEach((x, i) => {
    if (x === null) return;
    if (hi < 0 || x > logR[hi]!) hi = i;
    if (lo < 0 || x < logR[lo]!) lo = i;
  });
  if (hi < 0) return "exp3: no domain reported a loss yet; uniform exploration";
  return `exp3: highest smoothed loss on ${domains[hi]!.name} (${logR[hi]!.toFixed(3)}) gains the most weight, lowest on ${domains[lo]!.name} (${logR[lo]!.toFixed(3)})`;
}
