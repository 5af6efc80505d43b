/**
 * RegMix core (Liu et al. 2024, "RegMix: Data Mixture as Regression for Language Model
 * Pre-training", arXiv 2407.01492): fit a regression from proxy-run mixture weights to the
 * target loss, then propose the mixture by simulation — predict the loss of many Dirichlet
 * candidates drawn like the proxy mixtures, and average the top-k (lowest predicted loss).
 * Averaging the top-k rather than taking the argmin makes the proposal robust to the
 * regressor's noise (paper §3).
 *
 * Models: "gbdt" (our gradient-boosted trees, standing in for the paper's LightGBM) and
 * "linear" (least squares, the paper's baseline).
 */
import { fitGbdt, predictGbdt, type GbdtModel, type GbdtOptions } from "./gbdt.js";
import { fitLinear, predictLinear, type LinearModel } from "./linear.js";
import { sampleCandidates, type ProxySamplerOptions } from "./dirichlet.js";

export type RegressionKind = "gbdt" | "linear";
export type MixtureModel = GbdtModel | LinearModel;

export function fitMixtureModel(
  kind: RegressionKind,
  x: readonly (readonly number[])[],
  y: readonly number[],
  gbdt: GbdtOptions = {},
): MixtureModel {
  return kind === "gbdt" ? fitGbdt(x, y, gbdt) : fitLinear(x, y);
}

export function predictMixture(m: MixtureModel, row: readonly number[]): number {
  return m.kind === "gbdt" ? predictGbdt(m, row) : predictLinear(m, row);
}

export interface ProposeOptions extends ProxySamplerOptions {
  /** Candidate mixtures simulated (default 100 000). */
  readonly candidates?: number;
  /** How many of the best predicted candidates are averaged (default 100). */
  readonly topK?: number;
}

/**
 * The proposed mixture: mean of the top-k candidates by predicted loss (lower is better).
 * Deterministic in (model, prior, seed, options); ties keep the earlier candidate.
 */
export function proposeMixture(m: MixtureModel, prior: readonly number[], seed: number, o: ProposeOptions = {}): number[] {
  const count = Math.max(1, o.candidates ?? 100_000);
  const k = Math.max(1, Math.min(count, o.topK ?? 100));
  const cands = sampleCandidates(prior, count, seed, o);
  const scored = cands.map((c, i) => ({ i, p: predictMixture(m, c) }));
  scored.sort((a, b) => a.p - b.p || a.i - b.i);
  const out = new Array<number>(prior.length).fill(0);
  for (let r = 0; r < k; r++) {
    const c = cands[scored[r]!.i]!;
    for (let j = 0; j < out.length; j++) out[j] = out[j]! + c[j]! / k;
  }
  return out;
}
