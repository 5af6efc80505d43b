/**
 * A run: its domains, its strategy, its committed weight versions, and the two flows of
 * DESIGN.md — serving batches (pure function of config, seed and versions) and folding
 * reported signals into the strategy, which may commit new versions.
 *
 * `Run` composes rooms that never import it, one concern each (wired in rooms.ts):
 * - versions.ts: the version book (applied vs published versions, watchers);
 * - admission.ts: the serving frontier, the journaled lease, the commit gate, lookahead;
 * - serving.ts: planned global batches, slice assembly, content digests; probes.ts: eval probes;
 * - intake.ts: duplicate and stale reports, the dedup windows; reporting.ts: the report flow;
 * - pacing.ts: paced streams wait on their rank's reports;
 * - aggregation.ts: steps wait for their slices or the timeout, folded in order;
 * - strategy-commit.ts: the strategy update and the commit of what it decided;
 * - recovery.ts: journal events and snapshots applied to all of the above;
 * - run-journal.ts: every write, and the stop after a failed one;
 * - hooks.ts: the observer and deps types (generic, naming no Run).
 * What is left here is the order of the steps of a request. All journal writes go through
 * `RunLog`; all side effects of metrics through `RunObserver`; time through `now` and
 * `timers` (the seams unit tests fake).
 */
import type { RunConfig } from "../config/schema.js";
import { MixflowError } from "../errors.js";
import type { AnyStrategy, StrategyContext } from "../../strategies/types.js";
import { BatchPlanner, type GlobalBatch } from "../sampling/index.js";
import { EventType, type RunEvent, type SnapshotEvent, type Version } from "../history/events.js";
import type { LoadedDomain } from "./domains.js";
import type { SplitFingerprint } from "../sources/index.js";
import { strategyContext } from "./context.js";
import type { ReportInput } from "./report.js";
import { acceptReport } from "./reporting.js";
import { bindHooks, type ReportAck, type RunDepsOf, type RunObserverOf } from "./hooks.js";
import { composeRooms, type RunRooms } from "./rooms.js";
import { sliceGeometry, type SliceGeometry } from "./slice.js";
import type { EvalProbe, ServedBatch } from "./served.js";

export { LEASE_CHUNK } from "./admission.js";
export { digestHex } from "./plans.js";
export type { EvalProbe, ServedBatch, ServedSlice } from "./served.js";

export type { ReportAck } from "./hooks.js";
/** Metrics and log callbacks (hooks.ts), for a `Run`. */
export type RunObserver = RunObserverOf<Run>;
/** What a `Run` is constructed with (hooks.ts). */
export type RunDeps = RunDepsOf<Run>;

export class Run {
  readonly id: string;
  readonly config: RunConfig;
  readonly domains: readonly LoadedDomain[];
  readonly names: readonly string[];
  readonly ctx: StrategyContext;
  readonly strategy: AnyStrategy;
  readonly params: unknown;
  readonly planner: BatchPlanner;
  state: "open" | "closed" = "open";
  /** Fingerprints of the run's data files at creation (null: journaled before they existed). */
  dataFingerprint: SplitFingerprint[] | null = null;
  private readonly deps: RunDeps;
  private readonly r: RunRooms;

  constructor(config: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps) {
    this.id = config.id;
    this.config = config;
    this.domains = domains;
    this.names = domains.map((d) => d.name);
    this.strategy = strategy;
    this.params = params;
    this.deps = deps;
    this.ctx = strategyContext(config, domains.map((d) => d.info));
    this.planner = new BatchPlanner(config.seed, config.batchSize, domains.map((d) => d.plan));
    const { ctx, names, planner } = this;
    const spec = { config, domains, names, strategy, params, ctx, planner, log: deps.log, now: deps.now, timers: deps.timers, hooks: bindHooks(this, deps) };
    this.r = composeRooms(spec, {
      servedBound: () => this.servedBound,
      assertOpen: () => this.assertOpen(),
      state: () => this.state,
      setState: (s) => (this.state = s),
    });
  }

  // Creation and recovery

  /** Run the strategy's init and return the events that create the run (not yet written). */
  initialise(): RunEvent[] {
    const out = this.r.commits.init();
    this.r.evals.noteInitial(out.requestEvalIn);
    const created: RunEvent = {
      type: EventType.RunCreated,
      body: { runId: this.id, config: this.config, domains: this.ctx.domains.map((d) => ({ ...d })), ...(this.dataFingerprint ? { data: this.dataFingerprint } : {}) },
    };
    return [created, ...this.r.commits.initialVersions(out)];
  }

  /** Recovery: the strategy state as after init, before any journaled version is applied. */
  initialiseForReplay(): void {
    this.r.evals.noteInitial(this.r.commits.init().requestEvalIn);
  }

  /**
   * Hook for src/cluster (ClusterRun): an eval step decided by the run's cluster leader and
   * committed in etcd, served with probes to rank 0 like one this run's own strategy asked
   * for. The caller guarantees the step is past every step served (the cluster frontier).
   */
  protected addEvalStep(step: number): void {
    this.r.evals.add(step);
  }

  /** Apply one journaled event during recovery or offline replay. */
  replay(e: RunEvent): void {
    this.r.recovery.apply(e);
  }

  /** End of recovery (see recovery.ts). */
  finishRecovery(): Promise<void> {
    return this.r.recovery.finish();
  }

  /**
   * The record a clean shutdown writes once every stream has ended: exactly the steps
   * below the served bound have been served, so after the restart the first new version
   * may take effect right there instead of at the lease end. Null for a closed run.
   */
  drainRecord(): RunEvent | null {
    if (this.state !== "open") return null;
    return { type: EventType.Lease, body: { runId: this.id, upTo: this.servedBound, drained: true } };
  }

  snapshot(): SnapshotEvent {
    return this.r.recovery.snapshot({ config: this.config, ctx: this.ctx, data: this.dataFingerprint });
  }

  // Versions

  /** Every committed version, published or not. */
  get versions(): readonly Version[] {
    return this.r.book.all;
  }

  /** Committed versions whose journal record is durable (what GetWeights and WatchWeights show). */
  get publishedVersions(): readonly Version[] {
    return this.r.book.published;
  }

  /** The latest published (durable) version. */
  get currentVersion(): Version {
    return this.r.book.current;
  }

  /** Subscribe to new versions; the listener gets null when the run closes. */
  watch(listener: (v: Version | null) => void): () => void {
    return this.r.book.watch(listener);
  }

  // Serving

  /** Highest step served to any rank since this process started (-1: none). */
  get frontier(): number {
    return this.r.admission.frontier;
  }

  get lastAggregated(): number {
    return this.r.aggregation.lastAggregated;
  }

  /** Reports for already-aggregated steps acknowledged without recording (resumed trainers). */
  get staleReports(): number {
    return this.r.intake.staleReports;
  }

  /** Steps below this may have been served (this process or, after recovery, before). */
  get servedBound(): number {
    return this.r.admission.localBound;
  }

  /** The strategy never commits a version after init: how far ahead a step is asked for does not matter. */
  get fixedWeights(): boolean {
    return this.strategy.fixed === true;
  }

  /** Check (step, rank, world size) and return the slice geometry. */
  sliceOf(step: number, rank: number, worldSize: number): SliceGeometry {
    return sliceGeometry(this.config, step, rank, worldSize);
  }

  /** The planned global batch of a step (cached for the other ranks). */
  globalBatch(step: number): GlobalBatch {
    return this.r.serving.globalBatch(step);
  }

  /** `serve` for in-process callers: checks (step, rank, world size) first. */
  batch(step: number, rank: number, worldSize: number): Promise<ServedBatch> {
    return this.serve(this.sliceOf(step, rank, worldSize));
  }

  /** The batch of a checked slice — identical bytes however often and in whatever order it is asked. */
  async serve(s: SliceGeometry): Promise<ServedBatch> {
    this.assertOpen();
    const { step, rank } = s;
    this.r.admission.checkLookahead(step);
    await this.r.admission.admit(step);
    const t0 = performance.now();
    const b = this.r.serving.batch(s, this.r.evals.due(step, rank) ? this.r.evals.probesAt(step) : null);
    this.deps.observer?.served?.(this, b, (performance.now() - t0) / 1000, { step, rank });
    return b;
  }

  /** Fixed held-out probe windows per domain with an eval split (same for every request). */
  probes(): readonly EvalProbe[] {
    return this.r.evals.probes();
  }

  // Signals

  /** `accept` for in-process callers: checks (step, rank, world size) first. */
  report(step: number, rank: number, worldSize: number, input: ReportInput): Promise<ReportAck> {
    return this.accept(this.sliceOf(step, rank, worldSize), input);
  }

  /** Validate, journal and aggregate one report of a checked slice. Resolves once it is durable. */
  async accept(slice: SliceGeometry, input: ReportInput): Promise<ReportAck> {
    this.assertOpen();
    this.r.journal.check();
    return acceptReport(this.r.reporting, slice, input);
  }

  // Stream pacing (pacing.ts)

  mayServeAhead(offset: number, slots: number, step: number, ahead: number): boolean {
    return this.r.pacer.mayServeAhead(offset, slots, step, ahead);
  }

  startPacing(offset: number, slots: number, from: number): void {
    this.r.pacer.start(offset, slots, from);
  }

  waitForReport(offset: number, slots: number, stop: AbortSignal): Promise<void> {
    return this.r.pacer.waitForReport(offset, slots, stop);
  }

  // Aggregation

  /** Settles when every queued aggregation (and its journal writes) is done. */
  idle(): Promise<void> {
    return this.r.aggregation.idle();
  }

  // Lifecycle

  async close(): Promise<void> {
    if (this.state === "closed") return;
    await this.r.aggregation.idle();
    this.state = "closed";
    this.r.aggregation.stop();
    await this.r.journal.write([{ type: EventType.RunClosed, body: { runId: this.id } }]);
    this.r.book.closed();
  }

  /**
   * Sizes of the per-run collections that serving and reporting fill. Each is bounded
   * independently of the steps served: pending by the steps awaiting aggregation,
   * recentHashes by the intake's window, planCache by its size, inFlight by concurrent
   * reports. evalSteps and versions grow with strategy decisions only (the run's history).
   */
  memoryStats(): { pending: number; recentHashes: number; inFlight: number; planCache: number; evalSteps: number; versions: number; watchers: number } {
    return {
      pending: this.r.aggregation.pendingCount,
      ...this.r.intake.memoryStats(),
      planCache: this.r.serving.planCacheSize,
      evalSteps: this.r.evals.size,
      versions: this.r.book.all.length,
      watchers: this.r.book.watcherCount,
    };
  }

  /** Release files (server shutdown or run removal). */
  dispose(): void {
    this.r.aggregation.stop();
    for (const d of this.domains) {
      d.train.close();
      d.eval?.close();
    }
  }

  private assertOpen(): void {
    if (this.state !== "open") throw new MixflowError("FAILED_PRECONDITION", `run "${this.id}" is closed`);
  }
}
