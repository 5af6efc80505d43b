/**
 * Eval probes: which steps carry an eval request (the strategy asks for one k steps ahead;
 * the step is journaled with the aggregation that decided it, so recovery knows them), and
 * the probe windows sent with them — a fixed, seeded choice of held-out samples per domain
 * with an eval split, identical for every request, so eval losses are comparable over time.
 */
import type { RunConfig } from "../config/schema.js";
import { type GlobalBatch, hashWords, Permutation } from "../sampling/index.js";
import { assembleSlice } from "./assemble.js";
import type { LoadedDomain } from "./domains.js";
import type { EvalProbe } from "./served.js";

export class EvalProbes {
  private readonly steps = new Set<number>();
  private cache: EvalProbe[] | null = null;

  constructor(
    private readonly config: RunConfig,
    private readonly domains: readonly LoadedDomain[],
  ) {}

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
    if (this.cache) return this.cache;
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
      const slice = assembleSlice(g, 0, n, [d.eval]);
      // Served indices name documents of the user's eval split (not positions in a choice of them).
      const toSplit = d.evalIndexOf;
      out.push({ domain: i, slice: toSplit ? { ...slice, samples: slice.samples.map((s) => toSplit(s)) } : slice });
    });
    this.cache = out;
    return out;
  }
}
