/**
 * doremi: online DoReMi — Domain Reweighting with Minimax Optimization.
 *
 * Paper: Xie, Pham, Dong, Du, Liu, Lu, Liang, Le, Ma, Yu. "DoReMi: Optimizing Data Mixtures
 * Speeds Up Language Model Pretraining", NeurIPS 2023, arXiv 2305.10429 (Algorithm 1).
 *
 * Update rule, once per aggregated step t with signals for the domains present:
 *   λ_i      = mean over the domain's samples of max(0, ℓ(x) − ℓ_ref(x))   clipped per sample
 *              (the paper clips per token; the trainer reports losses per sample), or
 *              max(0, L̄_i(train) − L̄_i(reference)) when only per-domain sums are known
 *   α'_i     = α_{t−1,i} · exp(η · λ_i)                        exponentiated-gradient step
 *   α_t      = (1 − c) · α' / Σ α' + c · u                      normalise, smooth with uniform u
 *   output   = ᾱ_t = (1/t) Σ_{s=1..t} α_s                       the running AVERAGE of the weights
 *
 * The paper trains a proxy model on α_t and hands the average ᾱ to the target run; online,
 * mixflow serves ᾱ (param `output: "average"`, default) so the target run moves smoothly
 * towards the paper's final output, or α_t itself (`output: "current"`) to reproduce the
 * proxy-run behaviour.
 *
 * Reference losses, in order of preference per domain:
 *   1. reference-model losses reported alongside the training losses (`StepSignals.refLossSum`,
 *      mean = refLossSum_i / count_i), the paper's setting;
 *   2. `referenceLosses: {domain: loss}` — the per-domain mean loss of a recorded reference run
 *      (the replay tooling extracts it from that run's journal);
 *   3. neither: the domain's excess loss is taken as 0 (its weight only moves through
 *      normalisation and smoothing). This is a deliberate, documented fallback: without a
 *      reference DoReMi has no signal for that domain.
 * A domain absent from a step (count 0) keeps its previous excess-loss estimate, as the paper's
 * per-domain averaging over the minibatch does; a domain never seen has excess 0. The
 * reference mean divides by the samples that came with a reference (`refCount`), never by
 * slices that sent none; a domain whose reference covers only part of its samples, without
 * per-sample pairs to clip, keeps its previous estimate for that step.
 *
 * What is served: with `output: "current"` the run is the paper's proxy run (it trains on
 * α_t); with `"average"` it is served ᾱ_t, the running average the paper hands to the
 * target run, so one online run approximates "proxy, then target" without a second run.
 *
 * Defaults (paper): η = 1, c = 1e-3, α_0 = uniform. mixflow additions: `every` (default 10)
 * — steps between emitted versions; ᾱ moves by O(1/t) per step, so emitting every step would
 * only grow the journal — and `initial` (α_0 as a name → weight map; uniform if omitted).
 * Bounds and pins are applied to the emitted weights only, never to the internal α.
 */
import { z } from "zod";
import type { DomainInfo, StepSignals, Strategy } from "./types.js";
import { finalizeWeights, smoothWithUniform, uniform } from "./util/weights.js";
import { initialWeights, withPins } from "./util/pins.js";
import { weightsFromMap } from "./static.js";

const params = z
  .object({
    eta: z.number().finite().positive().default(1),
    smoothing: z.number().finite().min(0).max(1).default(1e-3),
    referenceLosses: z.record(z.string(), z.number().finite().nonnegative()).optional(),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
    output: z.enum(["average", "current"]).default("average"),
    every: z.number().int().positive().default(10),
  })
  .strict();

export type DoremiParams = z.infer<typeof params>;

export interface DoremiState {
  /** Current proxy weights α_t (a distribution). */
  alpha: number[];
  /** Σ_{s=1..t} α_s, for the average. */
  alphaSum: number[];
  /** t: number of updates folded in. */
  updates: number;
  /** Last excess-loss estimate per domain (kept for domains absent from a step). */
  excess: number[];
  /** Steps folded since the last emitted version. */
  sinceEmit: number;
}

/** Per-domain mean of `sums` over `count` (null where count is 0). */
export function domainMeans(sums: readonly number[], count: readonly number[]): (number | null)[] {
  return sums.map((s, i) => {
    const c = count[i] ?? 0;
    return c > 0 && Number.isFinite(s) ? s / c : null;
  });
}

/**
 * Per-sample clipped excess per domain, Σ max(0, ℓ − ℓ_ref) / n over the samples of the step
 * that came with a reference loss (the paper clips per token; mixflow gets losses per
 * sample). null for a domain with no such sample.
 */
export function perSampleExcess(k: number, signals: StepSignals): (number | null)[] {
  const s = signals.samples;
  const sum = new Array<number>(k).fill(0);
  const n = new Array<number>(k).fill(0);
  if (s?.ref) {
    for (let j = 0; j < s.loss.length; j++) {
      const r = s.ref[j];
      const d = s.domain[j]!;
      const l = s.loss[j]!;
      if (r === null || r === undefined || !Number.isFinite(r) || !Number.isFinite(l) || d < 0 || d >= k) continue;
      sum[d]! += Math.max(0, l - r);
      n[d]!++;
    }
  }
  return sum.map((x, d) => (n[d]! > 0 ? x / n[d]! : null));
}

/**
 * Excess loss per domain for one step; `prev` for domains absent from the step, and for
 * domains where only some ranks sent reference losses and no per-sample pairs are known
 * (their sums cover different samples, so the step is not used for that domain).
 */
export function excessLosses(
  domains: readonly DomainInfo[],
  p: DoremiParams,
  signals: StepSignals,
  prev: readonly number[],
): number[] {
  const train = domainMeans(signals.lossSum, signals.count);
  const perSample = perSampleExcess(domains.length, signals);
  const refCount = signals.refCount ?? signals.count;
  const ref = signals.refLossSum ? domainMeans(signals.refLossSum, refCount) : null;
  return domains.map((d, i) => {
    const l = train[i];
    if (l === null || l === undefined) return prev[i] ?? 0;
    const ps = perSample[i];
    if (ps !== null && ps !== undefined) return Number.isFinite(ps) ? ps : 0;
    const rc = refCount[i] ?? 0;
    if (signals.refLossSum && rc > 0 && rc < (signals.count[i] ?? 0)) return prev[i] ?? 0;
    const r = (rc > 0 ? ref?.[i] : null) ?? p.referenceLosses?.[d.name];
    if (r === undefined || r === null) return 0;
    const e = Math.max(0, l - r);
    return Number.isFinite(e) ? e : 0;
  });
}

/** One DoReMi step on α: exponentiated gradient, normalise, smooth. Pure. */
export function doremiStep(alpha: readonly number[], excess: readonly number[], eta: number, c: number): number[] {
  // Subtract the max exponent before exp so that large η·λ cannot overflow.
  const logits = alpha.map((a, i) => Math.log(Math.max(a, 1e-300)) + eta * (excess[i] ?? 0));
  const m = Math.max(...logits);
  const raw = logits.map((x) => Math.exp(x - m));
  const s = raw.reduce((a, b) => a + b, 0);
  const norm = s > 0 && Number.isFinite(s) ? raw.map((x) => x / s) : uniform(alpha.length);
  return smoothWithUniform(norm, c);
}

export const doremiStrategy: Strategy<DoremiParams, DoremiState> = {
  name: "doremi",
  summary: "Online DoReMi: exponentiated-gradient weights on excess loss over a reference, averaged (Xie et al. 2023).",
  params,
  init(ctx, p) {
    const alpha0 = initialWeights(ctx.domains, p.initial);
    const n = ctx.domains.length;
    return {
      state: { alpha: alpha0, alphaSum: new Array<number>(n).fill(0), updates: 0, excess: new Array<number>(n).fill(0), sinceEmit: 0 },
      weights: alpha0,
    };
  },
  update(ctx, p, state, signals) {
    const excess = excessLosses(ctx.domains, p, signals, state.excess);
    const alpha = doremiStep(state.alpha, excess, p.eta, p.smoothing);
    const alphaSum = state.alphaSum.map((s, i) => s + alpha[i]!);
    const updates = state.updates + 1;
    const sinceEmit = state.sinceEmit + 1;
    const next: DoremiState = { alpha, alphaSum, updates, excess, sinceEmit };
    if (sinceEmit < p.every) return { state: next, weights: null };
    const out = p.output === "average" ? alphaSum.map((s) => s / updates) : alpha;
    const pinned = withPins(ctx.domains, initialWeights(ctx.domains, p.initial));
    return { state: { ...next, sinceEmit: 0 }, weights: finalizeWeights(out, pinned) };
  },
};
