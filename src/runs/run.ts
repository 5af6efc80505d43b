/**
 * A run: its domains, its strategy, its committed weight versions, and the two flows of
 * DESIGN.md — serving batches (pure function of config, seed and versions) and folding
 * reported signals into the strategy, which may commit new versions.
 *
 * `Run` composes rooms that never import it, one concern each:
 * - versions.ts: the version book (applied vs published versions, watchers);
 * - admission.ts: the serving frontier, the journaled lease, the commit gate, lookahead;
 * - plans.ts / probes.ts: planned global batches, eval steps and probe windows;
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
import { assembleSlice } from "./assemble.js";
import { EventType, type RunEvent, type SnapshotEvent, type Version } from "../history/events.js";
import type { LoadedDomain } from "./domains.js";
import { ContentLedger, type Source, type SplitFingerprint } from "../sources/index.js";
import { strategyContext } from "./context.js";
import type { ReportInput } from "./report.js";
import { Admission } from "./admission.js";
import { AggregationQueue } from "./aggregation.js";
import { ReportIntake } from "./intake.js";
import type { SliceReport } from "./aggregator.js";
import { acceptReport, type ReportingDeps } from "./reporting.js";
import type { ReportAck, RunDepsOf, RunObserverOf } from "./hooks.js";
import { Pacer } from "./pacing.js";
import { PlanCache, digestHex } from "./plans.js";
import { EvalProbes } from "./probes.js";
import { Recovery } from "./recovery.js";
import { RunJournal } from "./run-journal.js";
import { sliceGeometry, type SliceGeometry } from "./slice.js";
import { StrategyCommit } from "./strategy-commit.js";
import { realTimers } from "./timers.js";
import { VersionBook } from "./versions.js";
import type { EvalProbe, ServedBatch, ServedSlice } from "./served.js";

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
  /** The domains' train sources, in domain order (batch assembly's lookup table). */
  private readonly trainSources: readonly Source[];
  readonly ctx: StrategyContext;
  readonly strategy: AnyStrategy;
  readonly params: unknown;
  readonly planner: BatchPlanner;
  state: "open" | "closed" = "open";
  /** Fingerprints of the run's data files at creation (null: journaled before they existed). */
  dataFingerprint: SplitFingerprint[] | null = null;
  private readonly deps: RunDeps;
  private readonly journal: RunJournal;
  private readonly book: VersionBook;
  private readonly plans: PlanCache;
  private readonly admission: Admission;
  private readonly evals: EvalProbes;
  private readonly intake: ReportIntake;
  private readonly pacer: Pacer;
  private readonly aggregation: AggregationQueue;
  private readonly commits: StrategyCommit;
  private readonly recovery: Recovery;
  private readonly reporting: ReportingDeps;
  /** Payload digests of served slices until their step is aggregated (issue 12; src/sources/content-digest.ts). */
  private readonly contents: ContentLedger;

  constructor(config: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps) {
    this.id = config.id;
    this.config = config;
    this.domains = domains;
    this.names = domains.map((d) => d.name);
    this.trainSources = domains.map((d) => d.train);
    this.contents = new ContentLedger(domains.length);
    this.strategy = strategy;
    this.params = params;
    this.deps = deps;
    this.ctx = strategyContext(config, domains.map((d) => d.info));
    this.planner = new BatchPlanner(config.seed, config.batchSize, domains.map((d) => d.plan));
    const timers = deps.timers ?? realTimers;
    const onError = (step: number, e: unknown): void => deps.onStrategyError?.(this, step, e);
    const write = (events: readonly RunEvent[]): Promise<void> => this.journal.write(events);
    this.journal = new RunJournal(deps.log);
    this.plans = new PlanCache(this.planner);
    this.book = new VersionBook(
      (v) => {
        this.planner.addVersion(v);
        this.plans.clear();
      },
      (v) => deps.observer?.version?.(this, v),
    );
    this.admission = new Admission({
      runId: this.id,
      maxLookahead: config.maxLookahead,
      fixedWeights: strategy.fixed === true,
      write,
      servedBound: () => this.servedBound,
      assertOpen: () => this.assertOpen(),
      onBackgroundError: onError,
    });
    this.evals = new EvalProbes(config, domains);
    this.intake = new ReportIntake(this.id, config.batchSize);
    this.pacer = new Pacer(deps.now, timers, config.aggregationTimeoutMs);
    this.commits = new StrategyCommit({
      runId: this.id,
      strategy,
      ctx: this.ctx,
      params,
      planner: this.planner,
      versions: this.book,
      log: { write },
      globalBatch: (step) => this.globalBatch(step),
      servedBound: () => this.servedBound,
      hold: (from) => this.admission.hold(from),
      addEvalStep: (step) => this.evals.add(step),
      onError,
      onUpdate: (seconds) => deps.observer?.strategyUpdate?.(this, seconds),
      onAggregated: (step, mean, evalLoss) => deps.observer?.aggregated?.(this, step, mean, evalLoss),
    });
    this.aggregation = new AggregationQueue({
      batchSize: config.batchSize,
      timeoutMs: config.aggregationTimeoutMs,
      now: deps.now,
      timers,
      isOpen: () => this.state === "open",
      fold: (step, slices) => this.aggregate(step, slices),
      onError,
    });
    this.reporting = {
      runId: this.id,
      names: this.names,
      intake: this.intake,
      aggregation: this.aggregation,
      pacer: this.pacer,
      journal: this.journal,
      globalBatch: (step) => this.globalBatch(step),
      servedBound: () => this.servedBound,
      currentVersion: () => this.currentVersion.version,
      onStale: (step, first) => {
        if (first) deps.onFirstStaleReport?.(this, step);
        deps.observer?.staleReport?.(this, step);
      },
      onSignal: (e) => deps.observer?.signal?.(this, e),
    };
    this.recovery = new Recovery({
      runId: this.id,
      versions: this.book,
      admission: this.admission,
      aggregation: this.aggregation,
      intake: this.intake,
      evals: this.evals,
      strategy: this.commits,
      state: () => this.state,
      setState: (s) => (this.state = s),
    });
  }

  // Creation and recovery

  /** Run the strategy's init and return the events that create the run (not yet written). */
  initialise(): RunEvent[] {
    const out = this.commits.init();
    this.evals.noteInitial(out.requestEvalIn);
    const created: RunEvent = {
      type: EventType.RunCreated,
      body: { runId: this.id, config: this.config, domains: this.ctx.domains.map((d) => ({ ...d })), ...(this.dataFingerprint ? { data: this.dataFingerprint } : {}) },
    };
    return [created, ...this.commits.initialVersions(out)];
  }

  /** Recovery: the strategy state as after init, before any journaled version is applied. */
  initialiseForReplay(): void {
    this.evals.noteInitial(this.commits.init().requestEvalIn);
  }

  /**
   * Hook for src/cluster (ClusterRun): an eval step decided by the run's cluster leader and
   * committed in etcd, served with probes to rank 0 like one this run's own strategy asked
   * for. The caller guarantees the step is past every step served (the cluster frontier).
   */
  protected addEvalStep(step: number): void {
    this.evals.add(step);
  }

  /** Apply one journaled event during recovery or offline replay. */
  replay(e: RunEvent): void {
    this.recovery.apply(e);
  }

  /** End of recovery (see recovery.ts). */
  finishRecovery(): Promise<void> {
    return this.recovery.finish();
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
    return this.recovery.snapshot({ config: this.config, ctx: this.ctx, data: this.dataFingerprint });
  }

  // Versions

  /** Every committed version, published or not. */
  get versions(): readonly Version[] {
    return this.book.all;
  }

  /** Committed versions whose journal record is durable (what GetWeights and WatchWeights show). */
  get publishedVersions(): readonly Version[] {
    return this.book.published;
  }

  /** The latest published (durable) version. */
  get currentVersion(): Version {
    return this.book.current;
  }

  /** Subscribe to new versions; the listener gets null when the run closes. */
  watch(listener: (v: Version | null) => void): () => void {
    return this.book.watch(listener);
  }

  // Serving

  /** Highest step served to any rank since this process started (-1: none). */
  get frontier(): number {
    return this.admission.frontier;
  }

  get lastAggregated(): number {
    return this.aggregation.lastAggregated;
  }

  /** Reports for already-aggregated steps acknowledged without recording (resumed trainers). */
  get staleReports(): number {
    return this.intake.staleReports;
  }

  /** Steps below this may have been served (this process or, after recovery, before). */
  get servedBound(): number {
    return this.admission.localBound;
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
    return this.plans.get(step);
  }

  /** `serve` for in-process callers: checks (step, rank, world size) first. */
  batch(step: number, rank: number, worldSize: number): Promise<ServedBatch> {
    return this.serve(this.sliceOf(step, rank, worldSize));
  }

  /** The batch of a checked slice — identical bytes however often and in whatever order it is asked. */
  async serve(s: SliceGeometry): Promise<ServedBatch> {
    this.assertOpen();
    const { step, rank, offset, slots, worldSize: ws } = s;
    this.admission.checkLookahead(step);
    await this.admission.admit(step);
    const t0 = performance.now();
    const g = this.globalBatch(step);
    const b: ServedBatch = {
      runId: this.id,
      step,
      rank,
      worldSize: ws,
      version: g.version,
      offset,
      slots,
      slice: this.digested(g, step, offset, slots, assembleSlice(g, offset, slots, this.trainSources)),
      digest: digestHex(g),
      eval: this.evals.due(step, rank) ? this.probes() : null,
    };
    this.deps.observer?.served?.(this, b, (performance.now() - t0) / 1000, { step, rank });
    return b;
  }

  /** The slice with its payload digested as the encoder writes it (content digests for `replay verify --data`). */
  private digested(g: GlobalBatch, step: number, offset: number, slots: number, a: ServedSlice): ServedSlice {
    return { ...a, payload: { ...a.payload, data: this.contents.wrap(g, step, offset, slots, a.payload) } };
  }

  /** Fixed held-out probe windows per domain with an eval split (same for every request). */
  probes(): readonly EvalProbe[] {
    return this.evals.probes();
  }

  // Signals

  /** `accept` for in-process callers: checks (step, rank, world size) first. */
  report(step: number, rank: number, worldSize: number, input: ReportInput): Promise<ReportAck> {
    return this.accept(this.sliceOf(step, rank, worldSize), input);
  }

  /** Validate, journal and aggregate one report of a checked slice. Resolves once it is durable. */
  async accept(slice: SliceGeometry, input: ReportInput): Promise<ReportAck> {
    this.assertOpen();
    this.journal.check();
    return acceptReport(this.reporting, slice, input);
  }

  // Stream pacing (pacing.ts)

  mayServeAhead(offset: number, slots: number, step: number, ahead: number): boolean {
    return this.pacer.mayServeAhead(offset, slots, step, ahead);
  }

  startPacing(offset: number, slots: number, from: number): void {
    this.pacer.start(offset, slots, from);
  }

  waitForReport(offset: number, slots: number, stop: AbortSignal): Promise<void> {
    return this.pacer.waitForReport(offset, slots, stop);
  }

  // Aggregation

  /** Settles when every queued aggregation (and its journal writes) is done. */
  idle(): Promise<void> {
    return this.aggregation.idle();
  }

  /** Fold a step into the strategy, journal it (and any new version), then commit. */
  private async aggregate(step: number, slices: SliceReport[]): Promise<void> {
    const out = this.commits.update(step, slices);
    const digest = digestHex(this.globalBatch(step));
    const content = this.contents.take(step);
    const events: RunEvent[] = [{ type: EventType.Aggregated, body: { runId: this.id, step, slices: slices.map((s) => s.offset), evalStep: null, digest, ...(content && { content }) } }];
    this.aggregation.finish(step);
    if (out) await this.commits.commit(step, out, events, 0);
    else await this.journal.write(events);
  }

  // Lifecycle

  async close(): Promise<void> {
    if (this.state === "closed") return;
    await this.aggregation.idle();
    this.state = "closed";
    this.aggregation.stop();
    await this.journal.write([{ type: EventType.RunClosed, body: { runId: this.id } }]);
    this.book.closed();
  }

  /**
   * Sizes of the per-run collections that serving and reporting fill. Each is bounded
   * independently of the steps served: pending by the steps awaiting aggregation,
   * recentHashes by the intake's window, planCache by its size, inFlight by concurrent
   * reports. evalSteps and versions grow with strategy decisions only (the run's history).
   */
  memoryStats(): { pending: number; recentHashes: number; inFlight: number; planCache: number; evalSteps: number; versions: number; watchers: number } {
    return {
      pending: this.aggregation.pendingCount,
      ...this.intake.memoryStats(),
      planCache: this.plans.size,
      evalSteps: this.evals.size,
      versions: this.book.all.length,
      watchers: this.book.watcherCount,
    };
  }

  /** Release files (server shutdown or run removal). */
  dispose(): void {
    this.aggregation.stop();
    for (const d of this.domains) {
      d.train.close();
      d.eval?.close();
    }
  }

  private assertOpen(): void {
    if (this.state !== "open") throw new MixflowError("FAILED_PRECONDITION", `run "${this.id}" is closed`);
  }
}
