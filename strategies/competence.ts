/**
 * competence: competence-based curriculum (Platanios, Stretcu, Neubig, Poczos, Mitchell,
 * "Competence-based Curriculum Learning for Neural Machine Translation", NAACL 2019,
 * arXiv 1903.09848).
 *
 * Rule: the model's competence c(t) ∈ (0, 1] is the fraction of the difficulty-ordered
 * training data it may sample from at step t:
 *   linear: c(t) = min(1, t · (1 − c0) / T + c0)
 *   sqrt:   c(t) = min(1, sqrt(t · (1 − c0²) / T + c0²))     (the paper's better variant)
 * so early steps draw only the easiest c0 of each domain and the whole split is open from
 * step T on. mixflow emits c(t) per domain as `StrategyOutput.competence`; the server orders
 * each domain's train split by its per-sample difficulty (a data field or a scores file) —
 * that part is the server's. Domain weights stay fixed (param `weights`, uniform if omitted)
 * while competence grows.
 *
 * Versions: competence changes continuously, versions are discrete, so a new version (same
 * weights, new competence) is emitted every `every` steps until c reaches 1; the version
 * emitted after step s carries c(s + 1), the first step it can take effect at.
 *
 * Params (paper defaults where the paper has one): `c0` 0.01, `T` steps to full competence
 * (default 10 000; the paper sets it per task, e.g. a fraction of the training run),
 * `variant` "sqrt" (default) | "linear", `every` 100, `weights` {domain: w}, `domains`
 * (names the curriculum applies to; others get competence 1; default all).
 */
import { z } from "zod";
import type { Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { weightsFromMap } from "./static.js";

const params = z
  .object({
    c0: z.number().finite().positive().max(1).default(0.01),
    T: z.number().int().positive().default(10_000),
    variant: z.enum(["sqrt", "linear"]).default("sqrt"),
    every: z.number().int().positive().default(100),
    weights: z.record(z.string(), z.number().finite().nonnegative()).optional(),
    domains: z.array(z.string()).optional(),
  })
  .strict();

export type CompetenceParams = z.infer<typeof params>;

export interface CompetenceState {
  /** True once a version with full competence has been emitted. */
  full: boolean;
}

/** c(t) of the paper for step t ≥ 0. */
export function competenceAt(p: Pick<CompetenceParams, "c0" | "T" | "variant">, t: number): number {
  const s = Math.max(0, t);
  if (s >= p.T) return 1; // exactly 1 from T on (the sqrt form rounds to 1 − ε)
  const c =
    p.variant === "linear"
      ? (s * (1 - p.c0)) / p.T + p.c0
      : Math.sqrt((s * (1 - p.c0 * p.c0)) / p.T + p.c0 * p.c0);
  return Math.min(1, Math.max(p.c0, c));
}

function perDomain(ctx: StrategyContext, p: CompetenceParams, c: number): number[] {
  const only = p.domains ? new Set(p.domains) : null;
  return ctx.domains.map((d) => (only && !only.has(d.name) ? 1 : c));
}

export const competenceStrategy: Strategy<CompetenceParams, CompetenceState> = {
  name: "competence",
  summary: "Competence-based curriculum: fixed weights, competence c(t) = min(1, sqrt(t(1−c0²)/T + c0²)) (Platanios et al. 2019).",
  params,
  init(ctx, p) {
    const weights = finalizeWeights(
      weightsFromMap(
        ctx.domains.map((d) => d.name),
        p.weights,
      ),
      ctx.domains,
    );
    const c = competenceAt(p, 0);
    return { state: { full: c >= 1 }, weights, competence: perDomain(ctx, p, c) };
  },
  update(ctx, p, state, signals) {
    if (state.full || (signals.step + 1) % p.every !== 0) return { state, weights: null };
    const c = competenceAt(p, signals.step + 1);
    const weights = finalizeWeights(
      weightsFromMap(
        ctx.domains.map((d) => d.name),
        p.weights,
      ),
      ctx.domains,
    );
    return { state: { full: c >= 1 }, weights, competence: perDomain(ctx, p, c) };
  },
};
