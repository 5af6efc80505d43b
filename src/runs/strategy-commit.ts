/**
 * The strategy's side of a run: it holds the strategy state, runs `init` and `update`, and
 * turns an output into a commit — a version taking effect past everything served, and/or an
 * eval request — made durable before anyone is served under it.
 *
 * Commit order (DESIGN.md, determinism 3): the version is applied first, so a snapshot
 * taken meanwhile includes it; serving of the steps it affects is held until its records
 * are durable; then it is published.
 */
import type { AnyStrategy, StrategyContext, StrategyOutput } from "../../strategies/types.js";

/** What `init` returns: version 1's weights, maybe later planned versions. */
export type InitOutput = ReturnType<AnyStrategy["init"]>;
import { finalizeWeights } from "../../strategies/util/weights.js";
import type { BatchPlanner, GlobalBatch } from "../sampling/index.js";
import { EventType, type RunEvent, type VersionEvent } from "../history/events.js";
import { foldStep, type SliceReport } from "./aggregator.js";
import type { VersionBook, VersionLog } from "./versions.js";
import { evalStepFor } from "./probes.js";

export interface StrategyCommitDeps {
  readonly runId: string;
  readonly strategy: AnyStrategy;
  readonly ctx: StrategyContext;
  readonly params: unknown;
  readonly planner: BatchPlanner;
  readonly versions: VersionBook;
  readonly log: VersionLog;
  globalBatch(step: number): GlobalBatch;
  /** Steps below this may have been served: a commit takes effect at it or later. */
  servedBound(): number;
  /** Hold serving from `fromStep` until the returned release is called. */
  hold(fromStep: number): () => void;
  /** An eval was requested for `step`. */
  addEvalStep(step: number): void;
  /** The strategy threw (a bug): the step still counts as aggregated. */
  onError(step: number, e: unknown): void;
  /** Metrics: one update's duration, and the per-domain means it saw. */
  onUpdate(seconds: number): void;
  onAggregated(step: number, lossMean: readonly (number | null)[], evalLoss: readonly (number | null)[] | null): void;
}

export class StrategyCommit {
  /** The strategy state after the last update (or init, or the last journaled version). */
  state: unknown;

  constructor(private readonly deps: StrategyCommitDeps) {}

  /** Run `init`: its output (the first versions come from it). */
  init(): InitOutput {
    const out = this.deps.strategy.init(this.deps.ctx, this.deps.params);
    this.state = out.state;
    return out;
  }

  /** The version events of `init`'s output (version 1 and any planned ones), applied. */
  initialVersions(out: InitOutput): RunEvent[] {
    const { ctx, runId } = this.deps;
    const planned = [{ fromStep: 0, weights: out.weights, competence: out.competence ?? null }, ...(out.planned ?? [])];
    return planned.map((p, i) => {
      const v: VersionEvent = {
        runId,
        version: i + 1,
        fromStep: p.fromStep,
        weights: finalizeWeights(p.weights, ctx.domains),
        competence: p.competence ? [...p.competence] : null,
        reason: i === 0 ? "init" : "planned",
        committedAtStep: -1,
        strategyState: out.state,
      };
      this.deps.versions.apply(v);
      return { type: EventType.Version, body: v };
    });
  }

  /** Run the strategy on a step's slices. Null if the strategy threw (reported, state kept). */
  update(step: number, slices: readonly SliceReport[]): StrategyOutput<unknown> | null {
    const d = this.deps;
    const signals = foldStep(d.planner, step, slices, () => d.globalBatch(step));
    const t0 = performance.now();
    let out: StrategyOutput<unknown>;
    try {
      out = d.strategy.update(d.ctx, d.params, this.state, signals);
    } catch (e) {
      d.onError(step, e);
      return null;
    }
    d.onUpdate((performance.now() - t0) / 1000);
    this.state = out.state;
    d.onAggregated(
      step,
      signals.count.map((c, i) => (c > 0 ? signals.lossSum[i]! / c : null)),
      signals.evalLoss,
    );
    return out;
  }

  /**
   * Turn a strategy output into a committed version and/or eval request: pick from_step
   * past everything served, hold serving at it, make the records durable, then publish.
   * `events` are written with it (the step's Aggregated record at `aggregatedIdx`, which
   * learns the eval step).
   */
  async commit(step: number, out: StrategyOutput<unknown>, events: RunEvent[], aggregatedIdx = -1): Promise<void> {
    const d = this.deps;
    const earliest = Math.max(d.servedBound(), step + 1);
    let evalStep: number | null = null;
    if (out.requestEvalIn && out.requestEvalIn > 0) {
      evalStep = evalStepFor(step, out.requestEvalIn, earliest, d.strategy.structureProbes?.(d.params) === true);
      const agg = events[aggregatedIdx];
      if (agg && agg.type === EventType.Aggregated) agg.body.evalStep = evalStep;
    }
    let version: VersionEvent | null = null;
    if (out.weights) {
      const last = d.versions.last;
      version = {
        runId: d.runId,
        version: last.version + 1,
        fromStep: Math.max(earliest, last.fromStep),
        weights: finalizeWeights(out.weights, d.ctx.domains),
        competence: out.competence ? [...out.competence] : (last.competence ? [...last.competence] : null),
        reason: out.reason ?? `update at step ${step}`,
        committedAtStep: step,
        strategyState: out.state,
      };
      events.push({ type: EventType.Version, body: version });
    }
    if (events.length === 0) return;
    const gateFrom = Math.min(version?.fromStep ?? Infinity, evalStep ?? Infinity);
    const release = gateFrom !== Infinity ? d.hold(gateFrom) : null;
    if (evalStep !== null) d.addEvalStep(evalStep);
    if (version) d.versions.apply(version, false);
    try {
      await d.log.write(events);
      d.versions.markDurable();
    } finally {
      release?.();
    }
  }
}
