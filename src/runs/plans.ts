/**
 * The planned global batches of recent steps. Every rank of a step asks for the same global
 * batch (and report intake and aggregation ask for it again), so it is planned once and kept
 * for a few steps; a new version changes plans, so applying one clears the cache.
 */
import type { BatchPlanner, GlobalBatch } from "../sampling/index.js";

/** Planned global batches kept for other ranks of the same step. */
const PLAN_CACHE = 16;

export class PlanCache {
  private readonly plans = new Map<number, GlobalBatch>();

  constructor(private readonly planner: BatchPlanner) {}

  /** The planned global batch of a step (cached for the other ranks). */
  get(step: number): GlobalBatch {
    let g = this.plans.get(step);
    if (!g) {
      g = this.planner.newBatch();
      this.planner.plan(step, g);
      if (this.plans.size >= PLAN_CACHE) this.plans.delete(this.plans.keys().next().value!);
      this.plans.set(step, g);
    }
    return g;
  }

  clear(): void {
    this.plans.clear();
  }

  get size(): number {
    return this.plans.size;
  }
}

/** The 64-bit batch digest as 16 hex digits. */
export function digestHex(g: GlobalBatch): string {
  return (g.digestHi >>> 0).toString(16).padStart(8, "0") + (g.digestLo >>> 0).toString(16).padStart(8, "0");
}
