/**
 * The leader's half of a run: signals forwarded by every replica are folded per step and
 * run through the run's strategy, exactly as a single process does (Run.runUpdate), and a
 * new weights version becomes a log entry proposal. Pure apart from the clock it is given:
 * committing is the caller's (ClusterNode) job, through the fenced append.
 *
 * A new leader starts from the strategy state recorded in the last committed version, so
 * signals folded by the previous leader after its last version are lost — adaptivity, never
 * reproducibility (DESIGN.md, several replicas). An update that asks for eval losses
 * (`requestEvalIn`) becomes an entry too (entries.ts): the eval step is served to rank 0
 * by every replica, and the eval losses reported for it reach the leader with the other
 * forwarded slices.
 */
import type { StepSignals, StrategyOutput } from "../../strategies/types.js";
import { finalizeWeights } from "../../strategies/util/weights.js";
import { foldSignals } from "../runs/aggregator.js";
import type { SignalsEvent } from "../history/events.js";
import type { Run } from "../runs/run.js";
import type { AnyStrategy } from "../../strategies/types.js";
import { evalStepFor } from "../runs/probes.js";
import type { EntryBody } from "./entries.js";
import type { Proposal } from "./etcd-commit-log.js";

/** Pending slices of one step. */
interface PendingStep {
  readonly firstAt: number;
  readonly slices: Map<number, SignalsEvent>;
  slots: number;
}

/**
 * A decided log entry (a version and/or an eval request); the caller commits it through
 * the run's EtcdCommitLog. `make` gets the smallest step the entry may affect (past the
 * cluster frontier, from the fenced append; it may be called again when the frontier
 * moved, so it is pure). Call it only with every earlier entry applied: the version id is
 * the next after the run's.
 */
export interface Decision extends Proposal {
  readonly step: number;
  /** A new weights version (false: an eval request alone). */
  readonly hasWeights: boolean;
}

export class Decider {
  private readonly run: Run;
  private readonly strategy: AnyStrategy;
  private state: unknown;
  private lastAggregated: number;
  private readonly pending = new Map<number, PendingStep>();
  /** Steps folded into the strategy (for tests and metrics). */
  folded = 0;

  constructor(run: Run, strategy: AnyStrategy, state: unknown, lastAggregated: number) {
    this.run = run;
    this.strategy = strategy;
    this.state = state;
    this.lastAggregated = lastAggregated;
  }

  /** Take forwarded slices (duplicates and slices of already folded steps are ignored). */
  add(slices: readonly SignalsEvent[], now: number): void {
    for (const e of slices) {
      if (e.step <= this.lastAggregated) continue;
      let p = this.pending.get(e.step);
      if (!p) {
        p = { firstAt: now, slices: new Map(), slots: 0 };
        this.pending.set(e.step, p);
      }
      if (p.slices.has(e.offset)) continue;
      p.slices.set(e.offset, e);
      p.slots += e.slots;
    }
  }

  /**
   * Fold the steps that are ready, in step order, and return the first decision that
   * produces weights or asks for eval losses (the caller commits it, then calls again). A step is ready when all
   * its slots are reported, or the run's aggregation timeout has passed since its first
   * slice. Unlike a single process, a step still incomplete below a complete one is dropped
   * rather than waited for: after a failover, the slices of the steps the old leader held
   * are gone, and waiting out each of them would delay the first new version.
   */
  next(now: number): Decision | null {
    const timeout = this.run.config.aggregationTimeoutMs;
    const batchSize = this.run.config.batchSize;
    for (;;) {
      let ready = Infinity;
      for (const [s, p] of this.pending) if (s < ready && (p.slots >= batchSize || now - p.firstAt >= timeout)) ready = s;
      if (ready === Infinity) return null;
      for (const s of [...this.pending.keys()]) if (s < ready) this.pending.delete(s);
      const p = this.pending.get(ready)!;
      this.pending.delete(ready);
      this.lastAggregated = ready;
      const out = this.update(ready, [...p.slices.values()]);
      this.folded++;
      if (out && (out.weights || (out.requestEvalIn ?? 0) > 0)) return this.decision(ready, out);
    }
  }

  private update(step: number, slices: SignalsEvent[]): StrategyOutput<unknown> | null {
    const run = this.run;
    const served = Array.from(run.planner.stepCounts(step));
    const servedTotal = Array.from(run.planner.cumulative(step + 1));
    const signals: StepSignals = foldSignals(step, run.names.length, slices, served, servedTotal, (offset, slots) => {
      const g = run.globalBatch(step);
      return { domains: g.domains.subarray(offset, offset + slots), samples: g.samples.subarray(offset, offset + slots) };
    });
    const out = this.strategy.update(run.ctx, run.params, this.state, signals) as StrategyOutput<unknown>;
    this.state = out.state;
    return out;
  }

  /** The same choices as Run.commitOutput, with the cluster frontier for the served bound. */
  private decision(step: number, out: StrategyOutput<unknown>): Decision {
    const run = this.run;
    const weights = out.weights ? finalizeWeights(out.weights, run.ctx.domains) : null;
    const evalIn = out.requestEvalIn && out.requestEvalIn > 0 ? Math.floor(out.requestEvalIn) : 0;
    return {
      step,
      hasWeights: weights !== null,
      make: (minFromStep) => {
        const earliest = Math.max(minFromStep, step + 1);
        const evalStep = evalIn > 0 ? evalStepFor(step, evalIn, earliest, this.strategy.structureProbes?.(run.params) === true) : null;
        if (!weights) {
          return { fromStep: evalStep!, body: { kind: "eval", evalStep: evalStep!, committedAtStep: step, strategyState: out.state } };
        }
        const last = run.versions[run.versions.length - 1]!;
        const fromStep = Math.max(earliest, last.fromStep);
        const competence = out.competence ? [...out.competence] : last.competence ? [...last.competence] : null;
        const body: EntryBody = {
          runId: run.id,
          version: last.version + 1,
          fromStep,
          weights,
          competence,
          reason: out.reason ?? `update at step ${step}`,
          committedAtStep: step,
          strategyState: out.state,
          ...(evalStep !== null ? { evalStep } : {}),
        };
        return { fromStep: Math.min(fromStep, evalStep ?? Infinity), body };
      },
    };
  }
}
