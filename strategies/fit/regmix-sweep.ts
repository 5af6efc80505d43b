/**
 * RegMix proxy sweeps without a CLI: plan the N proxy runs of a sweep (their mixtures, as
 * name → weight maps a benchmark can launch), and, given their results, propose the mixture
 * for the target run. Both are pure functions of their inputs and the seed.
 *
 * Typical use (a benchmark or script):
 *   const plan = planProxySweep(domains, { runs: 64, seed: 7 });
 *   // … launch one short proxy run per plan.runs[i].weights, measure its target loss …
 *   const { weights } = proposeFromSweep(domains, results, { seed: 7 });
 *   // → feed `weights` to the target run as `static` weights, or to `regmix` as params.
 */
import { sampleProxyMixtures, type ProxySamplerOptions } from "./dirichlet.js";
import { fitMixtureModel, proposeMixture, predictMixture, type ProposeOptions, type RegressionKind } from "./regmix.js";
import type { GbdtOptions } from "./gbdt.js";
import { spearman } from "./stats.js";

export interface SweepDomain {
  readonly name: string;
  /** Tokens (or bytes, or samples) in the domain: the token-distribution prior. */
  readonly size: number;
}

export interface ProxyRunConfig {
  readonly id: number;
  readonly weights: Record<string, number>;
}

export interface ProxyRunResult {
  readonly weights: Readonly<Record<string, number>>;
  /** The target metric of the proxy run (lower is better), e.g. validation loss. */
  readonly loss: number;
}

function toMap(names: readonly string[], w: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  names.forEach((n, i) => (out[n] = w[i] ?? 0));
  return out;
}

/** The mixtures of `runs` proxy runs, sampled as the RegMix paper does. */
export function planProxySweep(
  domains: readonly SweepDomain[],
  opts: { readonly runs: number; readonly seed: number } & ProxySamplerOptions,
): { readonly runs: ProxyRunConfig[] } {
  const names = domains.map((d) => d.name);
  const mixtures = sampleProxyMixtures(
    domains.map((d) => d.size),
    opts.runs,
    opts.seed,
    opts,
  );
  return { runs: mixtures.map((w, id) => ({ id, weights: toMap(names, w) })) };
}

export interface ProposeFromSweepOptions extends ProposeOptions {
  readonly seed: number;
  readonly model?: RegressionKind;
  readonly gbdt?: GbdtOptions;
}

/**
 * Fit the regression on the proxy results and propose the target mixture. Also returns the
 * in-sample Spearman correlation of the fit, a quick sanity check (not a held-out score).
 */
export function proposeFromSweep(
  domains: readonly SweepDomain[],
  results: readonly ProxyRunResult[],
  opts: ProposeFromSweepOptions,
): { readonly weights: Record<string, number>; readonly vector: number[]; readonly fitSpearman: number } {
  const names = domains.map((d) => d.name);
  const x = results.map((r) => names.map((n) => r.weights[n] ?? 0));
  const y = results.map((r) => r.loss);
  const model = fitMixtureModel(opts.model ?? "gbdt", x, y, opts.gbdt);
  const vector = proposeMixture(
    model,
    domains.map((d) => d.size),
    opts.seed,
    opts,
  );
  const fitSpearman = spearman(
    x.map((r) => predictMixture(model, r)),
    y,
  );
  return { weights: toMap(names, vector), vector, fitSpearman };
}
