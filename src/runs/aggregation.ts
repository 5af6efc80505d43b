/**
 * The aggregation queue: reported slices wait here per step until the step is complete (its
 * slices cover the batch) or its first report is `aggregationTimeoutMs` old, and steps are
 * folded strictly in order, one pass at a time. A step nobody reported is skipped once a
 * later step has waited out the timeout. What folding a step means (the strategy update
 * and its commit) is the `fold` callback's business (strategy-commit.ts).
 */
import { StepAggregate, type SliceReport } from "./aggregator.js";
import type { TimerHandle, Timers } from "./timers.js";

export interface AggregationDeps {
  readonly batchSize: number;
  readonly timeoutMs: number;
  readonly now: () => number;
  readonly timers: Timers;
  /** Folding stops when the run is no longer open. */
  isOpen(): boolean;
  /** Fold a ready step (marks it aggregated via `finish`, then commits what it decided). */
  fold(step: number, slices: SliceReport[]): Promise<void>;
  /** A pass failed (a journal write; strategy errors are handled inside `fold`). */
  onError(step: number, e: unknown): void;
}

export class AggregationQueue {
  lastAggregated = -1;
  private readonly pending = new Map<number, StepAggregate>();
  private chain: Promise<void> = Promise.resolve();
  private timer: TimerHandle | null = null;

  constructor(private readonly deps: AggregationDeps) {}

  /** The step's aggregate, created at its first report (which starts its timeout). */
  aggregateFor(step: number): StepAggregate {
    let a = this.pending.get(step);
    if (!a) {
      a = new StepAggregate(step, this.deps.now());
      this.pending.set(step, a);
    }
    return a;
  }

  /** The pending aggregate of a step, if any report for it is waiting. */
  pendingFor(step: number): StepAggregate | undefined {
    return this.pending.get(step);
  }

  /** Every waiting slice (a snapshot records them). */
  pendingSlices(): SliceReport[] {
    return [...this.pending.values()].flatMap((a) => [...a.slices.values()]);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  isComplete(step: number): boolean {
    if (step <= this.lastAggregated) return true;
    return this.pending.get(step)?.complete(this.deps.batchSize) ?? false;
  }

  /** The step was folded: forget its slices. */
  finish(step: number): void {
    this.lastAggregated = Math.max(this.lastAggregated, step);
    this.pending.delete(step);
  }

  /** Queue an aggregation pass (serialised with earlier ones). */
  schedule(): void {
    this.chain = this.chain.then(() => this.advance()).catch((e) => this.deps.onError(this.lastAggregated + 1, e));
  }

  /** Settles when every queued pass (and its journal writes) is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Disarm the timeout (close, dispose). */
  stop(): void {
    this.timer?.cancel();
  }

  private async advance(): Promise<void> {
    if (this.timer) {
      this.timer.cancel();
      this.timer = null;
    }
    const timeout = this.deps.timeoutMs;
    for (;;) {
      if (!this.deps.isOpen()) return;
      const now = this.deps.now();
      const next = this.lastAggregated + 1;
      const agg = this.pending.get(next);
      if (agg) {
        if (agg.complete(this.deps.batchSize) || now - agg.firstAt >= timeout) {
          await this.deps.fold(next, [...agg.slices.values()]);
          continue;
        }
        this.arm(agg.firstAt + timeout - now);
        return;
      }
      // No report at all for `next`: skip it once a later step is ready and waited out.
      let later: StepAggregate | null = null;
      for (const a of this.pending.values()) if (a.step > next && (!later || a.step < later.step)) later = a;
      if (!later) return;
      if (later.step <= this.lastAggregated) {
        this.pending.delete(later.step);
        continue;
      }
      if (now - later.firstAt >= timeout) {
        this.lastAggregated = later.step - 1;
        continue;
      }
      this.arm(later.firstAt + timeout - now);
      return;
    }
  }

  private arm(ms: number): void {
    this.timer = this.deps.timers.set(() => this.schedule(), Math.max(1, ms), true);
  }
}
