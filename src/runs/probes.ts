/**
 * Eval probes: which steps carry an eval request (the strategy asks for one k steps ahead;
 * the step is journaled with the aggregation that decided it, so recovery knows them), and
 * the probe windows sent with them — a fixed, seeded choice of held-out samples per domain
 * with an eval split, identical for every request, so eval losses are comparable over time.
 *
 * Structure probes (a strategy's `structureProbes`, strategies/types.ts): the eval steps of
 * such a run come in two kinds told apart by parity. An even step carries the probes in
 * order; an odd step carries the same probes with their symbols shuffled
 * (src/sources/shuffled.ts). The strategy picks the kind by the parity of the step it asks
 * for, and an eval step pushed past what has already been served keeps that parity
 * (`evalStepFor`), so no new journal field is needed: replay and recovery read the kind off
 * the journaled step.
 */
import { getStrategy } from "../../strategies/index.js";
import type { RunConfig } from "../config/schema.js";
import { type GlobalBatch, hashWords, Permutation } from "../sampling/index.js";
import { ShuffledSource } from "../sources/shuffled.js";
import { assembleSlice } from "./assemble.js";
import type { LoadedDomain } from "./domains.js";
import type { EvalProbe } from "./served.js";

/**
 * The step an eval asked for `requestEvalIn` steps after `step` is served on: no earlier than
 * `earliest` (past what is served already). With `keepParity` (structure probes) a pushed
 * step keeps the parity of the one asked for, since parity is the eval's kind.
 */
export function evalStepFor(step: number, requestEvalIn: number, earliest: number, keepParity: boolean): number {
  const asked = step + Math.floor(requestEvalIn);
  if (asked >= earliest) return asked;
  return keepParity && (earliest - asked) % 2 === 1 ? earliest + 1 : earliest;
}

/** Whether a run's strategy, with the run's params, asks for structure probes. */
export function usesStructureProbes(cfg: RunConfig): boolean {
  const s = getStrategy(cfg.strategy.name);
  if (!s?.structureProbes) return false;
  const p = s.params.safeParse(cfg.strategy.params ?? {});
  return p.success && s.structureProbes(p.data);
}

/** Whether eval step `step` of a run with structure probes carries shuffled probes. */
export function isShuffledEvalStep(step: number): boolean {
  return step % 2 === 1;
}

export class EvalProbes {
  private readonly steps = new Set<number>();
  private cache: EvalProbe[] | null = null;
  private shuffledCache: EvalProbe[] | null = null;

  constructor(
    private readonly config: RunConfig,
    private readonly domains: readonly LoadedDomain[],
    /** The strategy asks for structure probes (odd eval steps carry them shuffled). */
    readonly structure = false,
  ) {}

  /** The probes eval step `step` carries: shuffled on an odd step of a run with structure probes. */
  probesAt(step: number): EvalProbe[] {
    return this.structure && isShuffledEvalStep(step) ? this.shuffledProbes() : this.probes();
  }

  /** Rank 0's batch of `step` carries the probes. */
  due(step: number, rank: number): boolean {
    return rank === 0 && this.steps.has(step);
  }

  add(step: number): void {
    this.steps.add(step);
  }

  /** An eval asked for by `init` (k steps in) is due on step k - 1; init is pure, so replay recomputes it. */
  noteInitial(requestEvalIn: number | undefined): void {
    if (requestEvalIn && requestEvalIn > 0) this.steps.add(Math.floor(requestEvalIn) - 1);
  }

  /** The steps, for a snapshot. */
  list(): number[] {
    return [...this.steps];
  }

  /** Replace the steps (a snapshot's). */
  restore(steps: readonly number[]): void {
    this.steps.clear();
    for (const st of steps) this.steps.add(st);
  }

  get size(): number {
    return this.steps.size;
  }

  /** Fixed held-out probe windows per domain with an eval split (same for every request). */
  probes(): EvalProbe[] {
    this.cache ??= this.build(false);
    return this.cache;
  }

  /** The same probes, each with its symbols in a fixed random order. */
  shuffledProbes(): EvalProbe[] {
    this.shuffledCache ??= this.build(true);
    return this.shuffledCache;
  }

  private build(shuffled: boolean): EvalProbe[] {
    const out: EvalProbe[] = [];
    this.domains.forEach((d, i) => {
      if (!d.eval) return;
      const n = Math.min(this.config.evalProbes, d.eval.size);
      const perm = new Permutation(d.eval.size, hashWords(this.config.seed, i, 0xe7a1));
      const g: GlobalBatch = {
        step: 0,
        version: 0,
        domains: new Uint32Array(n),
        samples: Float64Array.from({ length: n }, (_, j) => perm.at(j)),
        digestHi: 0,
        digestLo: 0,
      };
      const src = shuffled ? new ShuffledSource(d.eval, hashWords(this.config.seed, i, 0x5a0f)) : d.eval;
      const slice = assembleSlice(g, 0, n, [src]);
      // Served indices name documents of the user's eval split (not positions in a choice of them).
      const toSplit = d.evalIndexOf;
      out.push({ domain: i, slice: toSplit ? { ...slice, samples: slice.samples.map((s) => toSplit(s)) } : slice });
    });
    return out;
  }
}
