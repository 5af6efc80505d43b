/**
 * Recovery: a run rebuilt from its journal, event by event (src/history's scan hands the
 * events over, with a snapshot's pending slices following it as Signals events), and the
 * snapshot that compaction writes. Replaying an Aggregated record re-runs the strategy
 * update (strategies are pure), so the state matches the live run's; a Version record then
 * replaces that state with the journaled one.
 *
 * One case needs care: a crash between an Aggregated record and the Version record of the
 * same update. The update's output is held (`unrecorded`) until the next Version record
 * arrives; if none does, `finish` commits it, past the lease.
 */
import type { RunConfig } from "../config/schema.js";
import type { StrategyContext, StrategyOutput } from "../../strategies/types.js";
import type { SplitFingerprint } from "../sources/index.js";
import { EventType, type RunEvent, type SnapshotEvent } from "../history/events.js";
import { StepAggregate, recordOfSlice, sliceOfRecord, type SliceReport } from "./aggregator.js";
import type { Admission } from "./admission.js";
import type { AggregationQueue } from "./aggregation.js";
import type { ReportIntake } from "./intake.js";
import type { EvalProbes } from "./probes.js";
import type { StrategyCommit } from "./strategy-commit.js";
import type { VersionBook } from "./versions.js";

/** The rooms of a run that recovery restores. */
export interface RecoveryParts {
  readonly runId: string;
  readonly versions: VersionBook;
  readonly admission: Admission;
  readonly aggregation: AggregationQueue;
  readonly intake: ReportIntake;
  readonly evals: EvalProbes;
  readonly strategy: StrategyCommit;
  state(): "open" | "closed";
  setState(s: "open" | "closed"): void;
}

/** What a snapshot records besides the rooms' state. */
export interface SnapshotHead {
  readonly config: RunConfig;
  readonly ctx: StrategyContext;
  readonly data: SplitFingerprint[] | null;
}

export class Recovery {
  /** The last update's output whose version record has not been read yet. */
  private unrecorded: { step: number; out: StrategyOutput<unknown> } | null = null;

  constructor(private readonly p: RecoveryParts) {}

  /** Apply one journaled event during recovery or offline replay. */
  apply(e: RunEvent): void {
    const p = this.p;
    switch (e.type) {
      case EventType.Version:
        this.unrecorded = null;
        p.versions.apply(e.body);
        p.strategy.state = e.body.strategyState;
        break;
      case EventType.Signals:
        p.aggregation.aggregateFor(e.body.step).add(sliceOfRecord(e.body));
        p.intake.remember(e.body);
        break;
      case EventType.Aggregated: {
        const agg = p.aggregation.pendingFor(e.body.step) ?? new StepAggregate(e.body.step, 0);
        const slices = e.body.slices.map((o) => agg.slices.get(o)).filter((s): s is SliceReport => s !== undefined);
        const out = p.strategy.update(e.body.step, slices);
        p.aggregation.finish(e.body.step);
        if (e.body.evalStep !== null) p.evals.add(e.body.evalStep);
        this.unrecorded = out && out.weights ? { step: e.body.step, out } : null;
        break;
      }
      case EventType.Lease:
        p.admission.replayLease(e.body.upTo, e.body.drained === true);
        break;
      case EventType.RunClosed:
        p.setState("closed");
        break;
      case EventType.Snapshot:
        this.restore(e.body);
        break;
      case EventType.RunCreated:
        break;
    }
  }

  /**
   * End of recovery: steps below the lease may have been served before the crash, so new
   * versions start after it; an update whose version record was torn off is committed now.
   */
  async finish(): Promise<void> {
    const p = this.p;
    p.admission.finishRecovery();
    const u = this.unrecorded;
    this.unrecorded = null;
    if (u && p.state() === "open") await p.strategy.commit(u.step, u.out, []);
    p.aggregation.schedule();
  }

  snapshot(head: SnapshotHead): SnapshotEvent {
    const p = this.p;
    return {
      runId: p.runId,
      config: head.config,
      domains: head.ctx.domains.map((d) => ({ ...d })),
      state: p.state(),
      versions: p.versions.all.map((v) => ({
        version: v.version,
        fromStep: v.fromStep,
        weights: [...v.weights],
        competence: v.competence ? [...v.competence] : null,
        reason: v.reason,
        committedAtStep: v.committedAtStep,
      })),
      strategyState: p.strategy.state,
      lastAggregated: p.aggregation.lastAggregated,
      leasedUpTo: p.admission.snapshotLease,
      evalSteps: p.evals.list(),
      pending: p.aggregation.pendingSlices().map((s) => recordOfSlice(p.runId, s)),
      recentHashes: p.intake.hashEntries(),
      ...(head.data ? { data: head.data } : {}),
    };
  }

  private restore(s: SnapshotEvent): void {
    const p = this.p;
    p.setState(s.state);
    for (const v of s.versions.slice(p.versions.all.length)) p.versions.apply({ ...v, runId: s.runId, strategyState: null });
    p.strategy.state = s.strategyState;
    p.aggregation.lastAggregated = s.lastAggregated;
    p.admission.restoreLease(s.leasedUpTo);
    p.evals.restore(s.evalSteps);
    // s.pending is not read here: src/history's scan follows the snapshot with the pending
    // slices not replayed yet, as Signals events.
    p.intake.restoreHashes(s.recentHashes);
    this.unrecorded = null;
  }
}
