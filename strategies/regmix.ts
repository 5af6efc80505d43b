/**
 * regmix: the mixture proposed by a RegMix proxy sweep, served as static weights.
 *
 * Paper: Liu, Zeng, He, Pang, Wang, Lin, Wang, Lin. "RegMix: Data Mixture as Regression for
 * Language Model Pre-training", arXiv 2407.01492 (ICLR 2025).
 *
 * Rule: given the results of N small proxy runs — their mixtures x_r (sampled with
 * `strategies/fit/dirichlet.ts` / `regmix-sweep.ts`) and target losses y_r — fit a regression
 * f(x) ≈ y (gradient-boosted trees standing in for the paper's LightGBM, or linear least
 * squares, the paper's baseline), predict the loss of `candidates` Dirichlet mixtures drawn
 * from the same token-prior process, and serve the mean of the `topK` with the lowest
 * predicted loss. Nothing adapts during the run: `update` never proposes new weights.
 *
 * Params: `mixtures` [{domain: w}] and `losses` [y] (same length, ≥ 2); `model` "gbdt"
 * (default) | "linear"; `candidates` (default 100 000) and `topK` (default 100); `prior`
 * "size" (token distribution from DomainInfo.size, default) | "uniform"; sampler options
 * `temperature` 0.5, `minStrength` 0.1, `maxStrength` 5 (paper defaults); GBDT options
 * `trees` 500, `learningRate` 0.05, `maxDepth` 3, `minLeaf` 5 (Spearman 0.99 on the RegMix
 * 1M-parameter testbed; linear 0.90 — see docs/strategies.md). The candidate draws are seeded
 * by the run seed, so the proposal is a pure function of (params, domains, seed).
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { fitMixtureModel, proposeMixture } from "./fit/regmix.js";

const params = z
  .object({
    mixtures: z.array(z.record(z.string(), z.number().finite().nonnegative())).min(2).max(100_000),
    losses: z.array(z.number().finite()).min(2).max(100_000),
    model: z.enum(["gbdt", "linear"]).default("gbdt"),
    candidates: z.number().int().positive().max(10_000_000).default(100_000),
    topK: z.number().int().positive().default(100),
    prior: z.enum(["size", "uniform"]).default("size"),
    temperature: z.number().finite().positive().default(0.5),
    minStrength: z.number().finite().positive().default(0.1),
    maxStrength: z.number().finite().positive().default(5),
    trees: z.number().int().positive().max(100_000).default(500),
    learningRate: z.number().finite().positive().max(1).default(0.05),
    maxDepth: z.number().int().positive().max(16).default(3),
    minLeaf: z.number().int().positive().default(5),
  })
  .strict()
  .refine((p) => p.mixtures.length === p.losses.length, { message: "mixtures and losses must have the same length" })
  .refine((p) => p.minStrength <= p.maxStrength, { message: "minStrength must be <= maxStrength" });

export type RegmixParams = z.infer<typeof params>;

/** The proposed mixture (before bounds), a pure function of the run's domains, seed and params. */
export function regmixProposal(domains: readonly { name: string; size: number }[], seed: number, p: RegmixParams): number[] {
  const names = domains.map((d) => d.name);
  const x = p.mixtures.map((m) => names.map((n) => m[n] ?? 0));
  const model = fitMixtureModel(p.model, x, p.losses, {
    trees: p.trees,
    learningRate: p.learningRate,
    maxDepth: p.maxDepth,
    minLeaf: p.minLeaf,
  });
  const prior = p.prior === "size" ? domains.map((d) => Math.max(d.size, 0)) : domains.map(() => 1);
  return proposeMixture(model, prior, seed, {
    candidates: p.candidates,
    topK: p.topK,
    temperature: p.temperature,
    minStrength: p.minStrength,
    maxStrength: p.maxStrength,
  });
}

export const regmixStrategy: Strategy<RegmixParams, Record<string, never>> = {
  name: "regmix",
  summary: "RegMix: regression over proxy-run mixtures → mean of the top-k predicted mixtures, served static (Liu et al. 2024).",
  params,
  fixed: true,
  init(ctx, p) {
    const raw = regmixProposal(ctx.domains, ctx.seed, p);
    return { state: {}, weights: finalizeWeights(raw, ctx.domains) };
  },
  update(_ctx, _p, state) {
    return { state, weights: null };
  },
};
