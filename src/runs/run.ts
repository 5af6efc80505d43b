/**
 * A run: its domains, its strategy, its committed weight versions, and the two flows of
 * DESIGN.md — serving batches (pure function of config, seed and versions) and folding
 * reported signals into the strategy, which may commit new versions.
 *
 * The determinism contract is enforced here:
 * - a new version takes effect at the serving frontier + 1 or later (never on a step any
 *   rank has been served), and serving of steps at or past it waits until it is durable;
 * - a signal is acknowledged only after its record is durable;
 * - after a crash, steps below the journaled lease may have been served, so the first new
 *   version starts after the lease; leases are renewed in small steps ahead of serving, so
 *   that jump is at most LEASE_CHUNK steps; a clean drain journals the exact frontier;
 * - a step more than `maxLookahead` past the frontier is refused (it would hold every later
 *   version back past it), unless the strategy never changes the weights (`fixed`).
 * All journal writes go through `RunLog`; all side effects of metrics through `RunObserver`.
 */
import type { RunConfig } from "../config/schema.js";
import { MixflowError, invalid, outOfRange, precondition } from "../errors.js";
import type { AnyStrategy, StrategyContext, StrategyOutput } from "../../strategies/types.js";
import { finalizeWeights } from "../../strategies/util/weights.js";
import { BatchPlanner, type GlobalBatch } from "../sampling/plan.js";
import { Permutation } from "../sampling/permutation.js";
import { hashWords } from "../sampling/hash.js";
import { assembleSlice, type AssembledSlice, type TextPayloadMsg, type TokenPayloadMsg } from "./assemble.js";
import { StepAggregate, foldStep } from "./aggregator.js";
import { EventType, type RunEvent, type RunLog, type SignalsEvent, type SnapshotEvent, type Version, type VersionEvent } from "../history/events.js";
import type { LoadedDomain } from "./domains.js";
import type { Source } from "../sources/source.js";
import type { SplitFingerprint } from "../sources/data-fingerprint.js";
import { strategyContext } from "./context.js";
import { normaliseReport, type ReportInput } from "./report.js";


/** Callbacks for metrics and logs; every method optional. */
export interface RunObserver {
  served?(run: Run, slice: AssembledSlice, assembleSeconds: number, where: { step: number; rank: number }): void;
  signal?(run: Run, e: SignalsEvent): void;
  rejected?(run: Run | null, reason: string): void;
  /** A report for a step already aggregated: acknowledged, not recorded (see `Run.report`). */
  staleReport?(run: Run, step: number): void;
  aggregated?(run: Run, step: number, lossMean: readonly (number | null)[], evalLoss: readonly (number | null)[] | null): void;
  version?(run: Run, v: Version): void;
  strategyUpdate?(run: Run, seconds: number): void;
}

export interface RunDeps {
  readonly log: RunLog;
  readonly now: () => number;
  readonly observer?: RunObserver;
  /** Called when a strategy throws (a bug): the step is still marked aggregated. */
  readonly onStrategyError?: (run: Run, step: number, e: unknown) => void;
  /** Called on a run's first stale report (a step already aggregated), to log it once. */
  readonly onFirstStaleReport?: (run: Run, step: number) => void;
}

/** Wire shape of a Batch (proto-loader, keepCase). */
export interface BatchMsg {
  run_id: string;
  step: number;
  rank: number;
  world_size: number;
  version: number;
  slot_offset: number;
  slots: number;
  slot_domains: Buffer;
  slot_samples: Buffer;
  text?: TextPayloadMsg;
  tokens?: TokenPayloadMsg;
  eval_requested: boolean;
  eval?: { probes: EvalProbeMsg[] };
  digest: string;
}

export interface EvalProbeMsg {
  domain: number;
  sample_indices: Buffer;
  text?: TextPayloadMsg;
  tokens?: TokenPayloadMsg;
}

/**
 * Steps leased per journal write: after a crash, the first new version takes effect at
 * most this many steps past the last served one. The lease is renewed when serving comes
 * within LEASE_RENEW of its end, in the background, so serving rarely waits on it.
 */
export const LEASE_CHUNK = 32;
const LEASE_RENEW = LEASE_CHUNK / 2;
/** Duplicate-detection memory: report hashes kept for this many slices. */
const HASH_WINDOW = 65_536;
/** Steps whose reported slice size is remembered (to name a world-size mismatch). */
const STEP_SLOTS = 4096;
/** Planned global batches kept for other ranks of the same step. */
const PLAN_CACHE = 16;

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
  readonly versions: Version[] = [];
  state: "open" | "closed" = "open";
  /** Fingerprints of the run's data files at creation (null: journaled before they existed). */
  dataFingerprint: SplitFingerprint[] | null = null;
  /** Highest step served to any rank since this process started (-1: none). */
  frontier = -1;
  lastAggregated = -1;
  private strategyState: unknown;
  private leasedUpTo = 0;
  /** Steps below this may have been served before a restart. */
  private recoveredBound = 0;
  private leaseWrite: Promise<void> | null = null;
  private readonly pending = new Map<number, StepAggregate>();
  private readonly recentHashes = new Map<string, string>();
  /** Reports for already-aggregated steps acknowledged without recording (resumed trainers). */
  staleReports = 0;
  /** Slice size each recent step was reported with (diagnosis of world-size mismatches). */
  private readonly stepSlots = new Map<number, number>();
  private readonly inFlight = new Map<string, { hash: string; done: Promise<void> }>();
  private readonly evalSteps = new Set<number>();
  private gate: { fromStep: number; done: Promise<void> } | null = null;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private readonly planCache = new Map<number, GlobalBatch>();
  private probeCache: EvalProbeMsg[] | null = null;
  private readonly watchers = new Set<(v: Version | null) => void>();
  /** Per rank slice ("offset:slots"): the highest step it reported, and when (stream pacing). Bounded by the rank limit. */
  private readonly reported = new Map<string, { step: number; at: number }>();
  private readonly reportWaiters = new Set<{ key: string; done: () => void }>();
  /** How many of `versions` are durable in the journal (published). */
  private durableCount = 0;
  /** Replay: the last update's output whose version record has not been read yet. */
  private unrecordedOutput: { step: number; out: StrategyOutput<unknown> } | null = null;
  private readonly deps: RunDeps;
  /** The first failed journal write (UNAVAILABLE): no report is acknowledged after it. */
  private journalFailure: MixflowError | null = null;

  constructor(config: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps) {
    this.id = config.id;
    this.config = config;
    this.domains = domains;
    this.names = domains.map((d) => d.name);
    this.trainSources = domains.map((d) => d.train);
    this.strategy = strategy;
    this.params = params;
    this.deps = deps;
    this.ctx = strategyContext(config, domains.map((d) => d.info));
    this.planner = new BatchPlanner(config.seed, config.batchSize, domains.map((d) => d.plan));
  }

  // -------------------------------------------------------------------------------------
  // Creation and recovery

  /** Run the strategy's init and return the events that create the run (not yet written). */
  initialise(): RunEvent[] {
    const out = this.strategy.init(this.ctx, this.params);
    this.strategyState = out.state;
    this.noteInitialEval(out);
    const events: RunEvent[] = [
      {
        type: EventType.RunCreated,
        body: { runId: this.id, config: this.config, domains: this.ctx.domains.map((d) => ({ ...d })), ...(this.dataFingerprint ? { data: this.dataFingerprint } : {}) },
      },
    ];
    const planned = [{ fromStep: 0, weights: out.weights, competence: out.competence ?? null }, ...(out.planned ?? [])];
    planned.forEach((p, i) => {
      const v: VersionEvent = {
        runId: this.id,
        version: i + 1,
        fromStep: p.fromStep,
        weights: finalizeWeights(p.weights, this.ctx.domains),
        competence: p.competence ? [...p.competence] : null,
        reason: i === 0 ? "init" : "planned",
        committedAtStep: -1,
        strategyState: out.state,
      };
      this.applyVersion(v);
      events.push({ type: EventType.Version, body: v });
    });
    return events;
  }

  /** Recovery: the strategy state as after init, before any journaled version is applied. */
  initialiseForReplay(): void {
    const out = this.strategy.init(this.ctx, this.params);
    this.strategyState = out.state;
    this.noteInitialEval(out);
  }

  /** An eval asked for by `init` (k steps in) is due on step k - 1; init is pure, so replay recomputes it. */
  private noteInitialEval(out: StrategyOutput<unknown>): void {
    if (out.requestEvalIn && out.requestEvalIn > 0) this.evalSteps.add(Math.floor(out.requestEvalIn) - 1);
  }

  /**
   * Hook for src/cluster (ClusterRun): an eval step decided by the run's cluster leader and
   * committed in etcd, served with probes to rank 0 like one this run's own strategy asked
   * for. The caller guarantees the step is past every step served (the cluster frontier).
   */
  protected addEvalStep(step: number): void {
    this.evalSteps.add(step);
  }

  /** Apply one journaled event during recovery or offline replay. */
  replay(e: RunEvent): void {
    switch (e.type) {
      case EventType.Version:
        if (this.unrecordedOutput) this.unrecordedOutput = null;
        this.applyVersion(e.body);
        this.strategyState = e.body.strategyState;
        break;
      case EventType.Signals: {
        const agg = this.aggregateFor(e.body.step);
        agg.add(e.body);
        this.noteSlots(e.body.step, e.body.slots);
        this.rememberHash(`${e.body.step}:${e.body.offset}`, e.body.hash);
        break;
      }
      case EventType.Aggregated: {
        const agg = this.pending.get(e.body.step) ?? new StepAggregate(e.body.step, 0);
        const slices = e.body.slices.map((o) => agg.slices.get(o)).filter((s): s is SignalsEvent => s !== undefined);
        const out = this.runUpdate(e.body.step, slices);
        this.finishAggregation(e.body.step);
        if (e.body.evalStep !== null) this.evalSteps.add(e.body.evalStep);
        this.unrecordedOutput = out && out.weights ? { step: e.body.step, out } : null;
        break;
      }
      case EventType.Lease:
        // A drained lease is exact (every stream had ended): it replaces the bound.
        this.leasedUpTo = e.body.drained ? e.body.upTo : Math.max(this.leasedUpTo, e.body.upTo);
        break;
      case EventType.RunClosed:
        this.state = "closed";
        break;
      case EventType.Snapshot:
        this.restoreSnapshot(e.body);
        break;
      case EventType.RunCreated:
        break;
    }
  }

  /**
   * End of recovery: steps below the lease may have been served before the crash, so new
   * versions start after it; an update whose version record was torn off is committed now.
   */
  async finishRecovery(): Promise<void> {
    this.recoveredBound = this.leasedUpTo;
    const u = this.unrecordedOutput;
    this.unrecordedOutput = null;
    if (u && this.state === "open") await this.commitOutput(u.step, u.out, []);
    this.scheduleAdvance();
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
    return {
      runId: this.id,
      config: this.config,
      domains: this.ctx.domains.map((d) => ({ ...d })),
      state: this.state,
      versions: this.versions.map((v) => ({
        version: v.version,
        fromStep: v.fromStep,
        weights: [...v.weights],
        competence: v.competence ? [...v.competence] : null,
        reason: v.reason,
        committedAtStep: v.committedAtStep,
      })),
      strategyState: this.strategyState,
      lastAggregated: this.lastAggregated,
      leasedUpTo: Math.max(this.leasedUpTo, this.frontier + 1),
      evalSteps: [...this.evalSteps],
      pending: [...this.pending.values()].flatMap((a) => [...a.slices.values()]),
      recentHashes: [...this.recentHashes.entries()],
      ...(this.dataFingerprint ? { data: this.dataFingerprint } : {}),
    };
  }

  private restoreSnapshot(s: SnapshotEvent): void {
    this.state = s.state;
    if (this.versions.length === 0) {
      for (const v of s.versions) this.applyVersion({ ...v, runId: s.runId, strategyState: null });
    } else {
      for (const v of s.versions.slice(this.versions.length)) this.applyVersion({ ...v, runId: s.runId, strategyState: null });
    }
    this.strategyState = s.strategyState;
    this.lastAggregated = s.lastAggregated;
    this.leasedUpTo = Math.max(this.leasedUpTo, s.leasedUpTo);
    this.evalSteps.clear();
    for (const st of s.evalSteps) this.evalSteps.add(st);
    // s.pending is not read here: src/history's scan follows the snapshot with the pending
    // slices not replayed yet, as Signals events.
    this.recentHashes.clear();
    for (const [k, h] of s.recentHashes) this.recentHashes.set(k, h);
    this.unrecordedOutput = null;
  }

  /**
   * Add a version to the planner. `durable` is false while its journal record is being
   * written (commitOutput): it is already in snapshots and gated for serving, but not shown
   * to GetWeights/WatchWeights until the write completes.
   */
  private applyVersion(v: Omit<VersionEvent, "strategyState"> & { strategyState?: unknown }, durable = true): void {
    const rv: Version = {
      version: v.version,
      fromStep: v.fromStep,
      weights: v.weights,
      competence: v.competence,
      reason: v.reason,
      committedAtStep: v.committedAtStep,
    };
    this.planner.addVersion(rv);
    this.versions.push(rv);
    this.planCache.clear();
    if (durable) this.markDurable();
  }

  /** Versions up to the last applied one are in the journal: publish them. */
  private markDurable(): void {
    while (this.durableCount < this.versions.length) {
      const rv = this.versions[this.durableCount++]!;
      this.deps.observer?.version?.(this, rv);
      for (const w of this.watchers) w(rv);
    }
  }

  /** Committed versions whose journal record is durable (what GetWeights and WatchWeights show). */
  get publishedVersions(): readonly Version[] {
    return this.durableCount === this.versions.length ? this.versions : this.versions.slice(0, this.durableCount);
  }

  // -------------------------------------------------------------------------------------
  // Serving

  /** The latest published (durable) version. */
  get currentVersion(): Version {
    return this.versions[Math.max(0, this.durableCount - 1)]!;
  }

  /** Steps below this may have been served (this process or, after recovery, before). */
  get servedBound(): number {
    return Math.max(this.frontier + 1, this.recoveredBound);
  }

  /** Check (step, rank, world size) and return the slice geometry. */
  sliceOf(step: number, rank: number, worldSize: number): { offset: number; slots: number; worldSize: number } {
    const ws = worldSize || this.config.worldSize;
    const b = this.config.batchSize;
    if (!Number.isSafeInteger(step) || step < 0) throw invalid(`step must be a non-negative integer, got ${step}`);
    if (this.config.maxSteps > 0 && step >= this.config.maxSteps) {
      throw outOfRange(`step ${step} is past the end of run "${this.id}" (maxSteps ${this.config.maxSteps})`);
    }
    if (b % ws !== 0) throw invalid(`world_size ${ws} does not divide the batch size ${b}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= ws) throw invalid(`rank ${rank} is out of range for world_size ${ws}`);
    const slots = b / ws;
    return { offset: rank * slots, slots, worldSize: ws };
  }

  /** The batch of (step, rank) — identical bytes however often and in whatever order it is asked. */
  async batch(step: number, rank: number, worldSize: number): Promise<BatchMsg> {
    this.assertOpen();
    const { offset, slots, worldSize: ws } = this.sliceOf(step, rank, worldSize);
    this.checkLookahead(step);
    await this.admit(step);
    const t0 = performance.now();
    const g = this.globalBatch(step);
    const a = assembleSlice(g, offset, slots, this.trainSources);
    const evalNow = rank === 0 && this.evalSteps.has(step);
    const msg: BatchMsg = {
      run_id: this.id,
      step,
      rank,
      world_size: ws,
      version: g.version,
      slot_offset: offset,
      slots,
      slot_domains: a.slotDomains,
      slot_samples: a.slotSamples,
      eval_requested: evalNow,
      digest: digestHex(g),
    };
    if (a.text) msg.text = a.text;
    if (a.tokens) msg.tokens = a.tokens;
    if (evalNow) msg.eval = { probes: this.probes() };
    this.deps.observer?.served?.(this, a, (performance.now() - t0) / 1000, { step, rank });
    return msg;
  }

  /** The strategy never commits a version after init: how far ahead a step is asked for does not matter. */
  get fixedWeights(): boolean {
    return this.strategy.fixed === true;
  }

  /**
   * Refuse a step more than `maxLookahead` past the serving frontier: serving it would move
   * the frontier there, and every later version would take effect past it (one stray
   * far-future request would freeze adaptation for good).
   */
  private checkLookahead(step: number): void {
    if (this.fixedWeights) return;
    const frontier = this.servedBound - 1;
    const max = this.config.maxLookahead;
    if (step - frontier > max) {
      throw outOfRange(
        `step ${step} is ${step - frontier} steps past the serving frontier (step ${frontier}) of run "${this.id}", more than maxLookahead (${max}): ` +
          `serving it would delay every later weights version past it. Ask for steps in order, or raise maxLookahead in the run config`,
      );
    }
  }

  /** The planned global batch of a step (cached for the other ranks). */
  globalBatch(step: number): GlobalBatch {
    let g = this.planCache.get(step);
    if (!g) {
      g = this.planner.newBatch();
      this.planner.plan(step, g);
      if (this.planCache.size >= PLAN_CACHE) this.planCache.delete(this.planCache.keys().next().value!);
      this.planCache.set(step, g);
    }
    return g;
  }

  /**
   * Wait until `step` may be served: no pending version takes effect at or before it, and
   * it is inside the durable lease. Then move the frontier, synchronously with the last check.
   */
  private async admit(step: number): Promise<void> {
    for (;;) {
      if (this.gate && step >= this.gate.fromStep) {
        await this.gate.done;
        continue;
      }
      if (step >= this.leasedUpTo) {
        await this.extendLease(step);
        continue;
      }
      break;
    }
    this.assertOpen();
    if (step > this.frontier) this.frontier = step;
    if (step + LEASE_RENEW >= this.leasedUpTo && !this.leaseWrite) {
      this.extendLease(step).catch((e: unknown) => this.deps.onStrategyError?.(this, step, e));
    }
  }

  /** Lease steps up to `step` + LEASE_CHUNK (one write in flight at a time). */
  private extendLease(step: number): Promise<void> {
    if (this.leaseWrite) return this.leaseWrite;
    const upTo = step + LEASE_CHUNK;
    this.leaseWrite = this.durable([{ type: EventType.Lease, body: { runId: this.id, upTo } }])
      .then(() => {
        this.leasedUpTo = Math.max(this.leasedUpTo, upTo);
      })
      .finally(() => {
        this.leaseWrite = null;
      });
    return this.leaseWrite;
  }

  /** Fixed held-out probe windows per domain with an eval split (same for every request). */
  probes(): EvalProbeMsg[] {
    if (this.probeCache) return this.probeCache;
    const out: EvalProbeMsg[] = [];
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
      const a = assembleSlice(g, 0, n, [d.eval]);
      const probe: EvalProbeMsg = { domain: i, sample_indices: a.slotSamples };
      if (a.text) probe.text = a.text;
      if (a.tokens) probe.tokens = a.tokens;
      out.push(probe);
    });
    this.probeCache = out;
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Signals

  /** Validate, journal and aggregate one report. Resolves once it is durable. */
  async report(
    step: number,
    rank: number,
    worldSize: number,
    input: ReportInput,
  ): Promise<{ duplicate: boolean; stepComplete: boolean; version: number }> {
    this.assertOpen();
    if (this.journalFailure) throw this.journalFailure;
    const { offset, slots } = this.sliceOf(step, rank, worldSize);
    if (step >= this.servedBound) {
      throw precondition(`step ${step} of run "${this.id}" has not been served yet (served up to ${this.servedBound - 1}); report after receiving the batch`);
    }
    const g = this.globalBatch(step);
    const norm = normaliseReport(input, { offset, domains: g.domains.subarray(offset, offset + slots) }, this.names);
    const key = `${step}:${offset}`;
    const dup = (known: string | undefined): boolean => {
      if (known === undefined) return false;
      if (known === norm.hash) return true;
      this.assertStepGeometry(step, slots, worldSize);
      throw precondition(
        `step ${step} slice at slot ${offset} was already reported with different values; a re-sent report must be identical (resumed trainers re-send the same losses)`,
      );
    };
    const flying = this.inFlight.get(key);
    if (!flying && step <= this.lastAggregated && this.recentHashes.get(key) !== norm.hash) {
      return this.staleReport(step, offset, slots);
    }
    if (flying) {
      dup(flying.hash);
      await flying.done;
      return { duplicate: true, stepComplete: this.isComplete(step), version: this.currentVersion.version };
    }
    if (dup(this.recentHashes.get(key))) {
      this.noteReported(offset, slots, step);
      return { duplicate: true, stepComplete: this.isComplete(step), version: this.currentVersion.version };
    }
    const agg = this.pending.get(step);
    const clash = agg?.overlapping(offset, slots);
    if (clash) {
      this.assertStepGeometry(step, slots, worldSize);
      throw precondition(`slice [${offset}, ${offset + slots}) overlaps an already reported slice [${clash.offset}, ${clash.offset + clash.slots}) of step ${step}: all ranks of a step must use one world size`);
    }
    const e: SignalsEvent = {
      runId: this.id,
      step,
      offset,
      slots,
      hash: norm.hash,
      lossSum: norm.lossSum,
      count: norm.count,
      sampleLosses: norm.sampleLosses ? Buffer.from(norm.sampleLosses.buffer).toString("base64") : null,
      refLossSum: norm.refLossSum,
      refLosses: norm.refLosses ? Buffer.from(norm.refLosses.buffer).toString("base64") : null,
      evalLoss: norm.evalLoss,
    };
    // State first, durability second: a snapshot taken while this write is in flight
    // already contains the report, so compaction can never drop it. The ack waits.
    this.aggregateFor(step).add(e);
    this.noteSlots(step, slots);
    this.rememberHash(key, norm.hash);
    const done = this.durable([{ type: EventType.Signals, body: e }]);
    done.catch(() => undefined); // awaited below and by concurrent duplicates
    this.inFlight.set(key, { hash: norm.hash, done });
    try {
      await done;
    } finally {
      this.inFlight.delete(key);
    }
    this.deps.observer?.signal?.(this, e);
    this.noteReported(offset, slots, step);
    this.scheduleAdvance();
    return { duplicate: false, stepComplete: this.isComplete(step), version: this.currentVersion.version };
  }

  /**
   * A report for a step the strategy has already consumed changes nothing, whatever its
   * values: a trainer resumed from a checkpoint re-trains those steps, and its losses are
   * never bit-identical to the first attempt's (GPU kernels are not deterministic). So it
   * is acknowledged as a duplicate, not journaled, counted, and logged once per run; only
   * a conflicting report for a step still being aggregated is refused.
   */
  private staleReport(step: number, offset: number, slots: number): { duplicate: boolean; stepComplete: boolean; version: number } {
    if (this.staleReports++ === 0) this.deps.onFirstStaleReport?.(this, step);
    this.deps.observer?.staleReport?.(this, step);
    this.noteReported(offset, slots, step);
    return { duplicate: true, stepComplete: true, version: this.currentVersion.version };
  }

  // -------------------------------------------------------------------------------------
  // Stream pacing

  /**
   * A rank's stream may run at most `ahead` steps past the last step that rank reported.
   * Without this, HTTP/2 flow control lets a stream buffer dozens of batches in the client,
   * the serving frontier races ahead of training, and every new version takes effect that
   * many steps late. Only streams that ask for it are paced (`pace_by_reports`), and a
   * rank whose reports stall for the aggregation timeout is released.
   */
  mayServeAhead(offset: number, slots: number, step: number, ahead: number): boolean {
    const r = this.reported.get(`${offset}:${slots}`);
    if (!r) return true;
    return step <= r.step + ahead || this.deps.now() - r.at >= this.config.aggregationTimeoutMs;
  }

  /** Start pacing a slice's stream from `from` (as if it had reported up to from − 1, now). */
  startPacing(offset: number, slots: number, from: number): void {
    const key = `${offset}:${slots}`;
    if (!this.reported.has(key)) this.reported.set(key, { step: from - 1, at: this.deps.now() });
  }

  /**
   * Resolves at this slice's next report, after the aggregation timeout, or when `stop`
   * aborts. The stop listener is removed when the wait ends: a stream waits once per step
   * for its whole life, and a closure left on a long-lived stop signal per wait was a leak
   * of ~1 KiB per rank-step (test/load/heap-slope.test.ts).
   */
  waitForReport(offset: number, slots: number, stop: AbortSignal): Promise<void> {
    const key = `${offset}:${slots}`;
    const r = this.reported.get(key);
    const wait = r ? Math.max(1, r.at + this.config.aggregationTimeoutMs - this.deps.now()) : 1;
    return new Promise<void>((resolve) => {
      if (stop.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.reportWaiters.delete(w);
        stop.removeEventListener("abort", done);
        resolve();
      };
      const w = { key, done };
      const timer = setTimeout(done, wait);
      this.reportWaiters.add(w);
      stop.addEventListener("abort", done, { once: true });
    });
  }

  private noteReported(offset: number, slots: number, step: number): void {
    const key = `${offset}:${slots}`;
    const r = this.reported.get(key);
    if (!r || step > r.step) this.reported.set(key, { step, at: this.deps.now() });
    else r.at = this.deps.now();
    for (const w of [...this.reportWaiters]) if (w.key === key) w.done();
  }

  private isComplete(step: number): boolean {
    if (step <= this.lastAggregated) return true;
    return this.pending.get(step)?.complete(this.config.batchSize) ?? false;
  }

  private aggregateFor(step: number): StepAggregate {
    let a = this.pending.get(step);
    if (!a) {
      a = new StepAggregate(step, this.deps.now());
      this.pending.set(step, a);
    }
    return a;
  }

  /** Remember the slice size a step was reported with (bounded: the last STEP_SLOTS steps). */
  private noteSlots(step: number, slots: number): void {
    if (this.stepSlots.has(step)) return;
    this.stepSlots.set(step, slots);
    if (this.stepSlots.size > STEP_SLOTS) this.stepSlots.delete(this.stepSlots.keys().next().value!);
  }

  /**
   * Called on the way to refusing a report: if the step was reported with another slice
   * size, the world size is what is wrong, and the refusal says so (rather than blaming an
   * aggregation timeout or different values).
   */
  private assertStepGeometry(step: number, slots: number, worldSize: number): void {
    const seen = this.stepSlots.get(step);
    if (seen === undefined || seen === slots) return;
    throw precondition(
      `world_size ${worldSize} (${slots} slots per rank) does not match the other reports of step ${step} of run "${this.id}", which used world_size ${this.config.batchSize / seen} (${seen} slots per rank): all ranks of a step must use one world size`,
    );
  }

  private rememberHash(key: string, hash: string): void {
    this.recentHashes.set(key, hash);
    if (this.recentHashes.size > HASH_WINDOW) this.recentHashes.delete(this.recentHashes.keys().next().value!);
  }

  /** Queue an aggregation pass (serialised with earlier ones). */
  private scheduleAdvance(): void {
    this.chain = this.chain.then(() => this.advance()).catch((e) => this.deps.onStrategyError?.(this, this.lastAggregated + 1, e));
  }

  /** Settles when every queued aggregation (and its journal writes) is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  private async advance(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const timeout = this.config.aggregationTimeoutMs;
    for (;;) {
      if (this.state !== "open") return;
      const now = this.deps.now();
      const next = this.lastAggregated + 1;
      const agg = this.pending.get(next);
      if (agg) {
        if (agg.complete(this.config.batchSize) || now - agg.firstAt >= timeout) {
          await this.aggregate(next, [...agg.slices.values()]);
          continue;
        }
        this.armTimer(agg.firstAt + timeout - now);
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
      this.armTimer(later.firstAt + timeout - now);
      return;
    }
  }

  private armTimer(ms: number): void {
    this.timer = setTimeout(() => this.scheduleAdvance(), Math.max(1, ms));
    this.timer.unref();
  }

  /** Fold a step into the strategy, journal it (and any new version), then commit. */
  private async aggregate(step: number, slices: SignalsEvent[]): Promise<void> {
    const out = this.runUpdate(step, slices);
    const events: RunEvent[] = [];
    const aggregatedIdx = events.length;
    const digest = digestHex(this.globalBatch(step));
    events.push({ type: EventType.Aggregated, body: { runId: this.id, step, slices: slices.map((s) => s.offset), evalStep: null, digest } });
    this.finishAggregation(step);
    if (out) await this.commitOutput(step, out, events, aggregatedIdx);
    else await this.durable(events);
  }

  /** Run the strategy on a step's slices. Null if the strategy threw (reported, state kept). */
  private runUpdate(step: number, slices: readonly SignalsEvent[]): StrategyOutput<unknown> | null {
    const signals = foldStep(this.planner, step, slices, () => this.globalBatch(step));
    const t0 = performance.now();
    let out: StrategyOutput<unknown>;
    try {
      out = this.strategy.update(this.ctx, this.params, this.strategyState, signals);
    } catch (e) {
      this.deps.onStrategyError?.(this, step, e);
      return null;
    }
    this.deps.observer?.strategyUpdate?.(this, (performance.now() - t0) / 1000);
    this.strategyState = out.state;
    this.deps.observer?.aggregated?.(
      this,
      step,
      signals.count.map((c, d) => (c > 0 ? signals.lossSum[d]! / c : null)),
      signals.evalLoss,
    );
    return out;
  }

  private finishAggregation(step: number): void {
    this.lastAggregated = Math.max(this.lastAggregated, step);
    this.pending.delete(step);
  }

  /**
   * Turn a strategy output into a committed version and/or eval request: pick from_step
   * past everything served, gate serving at it, make the records durable, then apply.
   */
  private async commitOutput(step: number, out: StrategyOutput<unknown>, events: RunEvent[], aggregatedIdx = -1): Promise<void> {
    const earliest = Math.max(this.servedBound, step + 1);
    let evalStep: number | null = null;
    if (out.requestEvalIn && out.requestEvalIn > 0) {
      evalStep = Math.max(earliest, step + Math.floor(out.requestEvalIn));
      const agg = events[aggregatedIdx];
      if (agg && agg.type === EventType.Aggregated) agg.body.evalStep = evalStep;
    }
    let version: VersionEvent | null = null;
    if (out.weights) {
      const last = this.versions[this.versions.length - 1]!;
      version = {
        runId: this.id,
        version: last.version + 1,
        fromStep: Math.max(earliest, last.fromStep),
        weights: finalizeWeights(out.weights, this.ctx.domains),
        competence: out.competence ? [...out.competence] : (last.competence ? [...last.competence] : null),
        reason: out.reason ?? `update at step ${step}`,
        committedAtStep: step,
        strategyState: out.state,
      };
      events.push({ type: EventType.Version, body: version });
    }
    if (events.length === 0) return;
    // Apply first (so a concurrent snapshot includes it), but hold serving of the steps it
    // affects until the records are durable (DESIGN.md determinism 3).
    const gateFrom = Math.min(version?.fromStep ?? Infinity, evalStep ?? Infinity);
    let release!: () => void;
    if (gateFrom !== Infinity) this.gate = { fromStep: gateFrom, done: new Promise<void>((r) => (release = r)) };
    if (evalStep !== null) this.evalSteps.add(evalStep);
    if (version) this.applyVersion(version, false);
    try {
      await this.durable(events);
      this.markDurable();
    } finally {
      if (gateFrom !== Infinity) {
        this.gate = null;
        release();
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Weights and lifecycle

  /** Subscribe to new versions; the listener gets null when the run closes. */
  watch(listener: (v: Version | null) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    await this.chain;
    this.state = "closed";
    if (this.timer) clearTimeout(this.timer);
    await this.durable([{ type: EventType.RunClosed, body: { runId: this.id } }]);
    for (const w of this.watchers) w(null);
  }

  /**
   * Sizes of the per-run collections that serving and reporting fill. Each is bounded
   * independently of the steps served: pending by the steps awaiting aggregation,
   * recentHashes by HASH_WINDOW, planCache by PLAN_CACHE, inFlight by concurrent reports.
   * evalSteps and versions grow with strategy decisions only (they are the run's history).
   */
  memoryStats(): { pending: number; recentHashes: number; inFlight: number; planCache: number; evalSteps: number; versions: number; watchers: number } {
    return {
      pending: this.pending.size,
      recentHashes: this.recentHashes.size,
      inFlight: this.inFlight.size,
      planCache: this.planCache.size,
      evalSteps: this.evalSteps.size,
      versions: this.versions.length,
      watchers: this.watchers.size,
    };
  }

  /** Release files (server shutdown or run removal). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.domains) {
      d.train.close();
      d.eval?.close();
    }
  }

  /**
   * Every journal write of the run. The journal stops for good after a failed write, and
   * the run's memory may already hold what was not recorded (state first, durability
   * second), so after a failure no report is acknowledged, not even as a duplicate.
   */
  private async durable(events: readonly RunEvent[]): Promise<void> {
    if (this.journalFailure) throw this.journalFailure;
    try {
      await this.deps.log.write(events);
    } catch (e) {
      this.journalFailure ??= MixflowError.from(e);
      throw e;
    }
  }

  private assertOpen(): void {
    if (this.state !== "open") throw new MixflowError("FAILED_PRECONDITION", `run "${this.id}" is closed`);
  }
}

/** The 64-bit batch digest as 16 hex digits. */
export function digestHex(g: GlobalBatch): string {
  return (g.digestHi >>> 0).toString(16).padStart(8, "0") + (g.digestLo >>> 0).toString(16).padStart(8, "0");
}
