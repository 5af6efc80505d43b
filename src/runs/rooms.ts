/**
 * The wiring of a run's rooms: each room is handed only the functions of the others it
 * needs (a write, a clock, a getter), never the rooms' composer, so each can be built and
 * tested alone (test/runs/rooms.test.ts). What the rooms need from the run itself is four
 * callbacks (`RoomsHost`): the served bound (a cluster replica widens it), the open check
 * and the run's state. Folding a ready step — the strategy update, the step's Aggregated
 * record, the commit of what the update decided — is the one place where aggregation,
 * serving and the strategy meet, so it is wired here too (`foldReady`).
 */
import type { RunConfig } from "../config/schema.js";
import type { AnyStrategy, StrategyContext } from "../../strategies/types.js";
import type { BatchPlanner } from "../sampling/index.js";
import { EventType, type RunEvent, type RunLog } from "../history/events.js";
import { Admission } from "./admission.js";
import { AggregationQueue } from "./aggregation.js";
import type { SliceReport } from "./aggregator.js";
import type { LoadedDomain } from "./domains.js";
import type { RoomHooks } from "./hooks.js";
import { ReportIntake } from "./intake.js";
import { Pacer } from "./pacing.js";
import { EvalProbes, isShuffledEvalStep } from "./probes.js";
import { Recovery } from "./recovery.js";
import type { ReportingDeps } from "./reporting.js";
import { RunJournal } from "./run-journal.js";
import { Serving } from "./serving.js";
import { StrategyCommit } from "./strategy-commit.js";
import { realTimers, type Timers } from "./timers.js";
import { VersionBook } from "./versions.js";

/** What the rooms are built from (the run's config and parts, and its injection seams). */
export interface RoomsSpec {
  readonly config: RunConfig;
  readonly domains: readonly LoadedDomain[];
  readonly names: readonly string[];
  readonly strategy: AnyStrategy;
  readonly params: unknown;
  readonly ctx: StrategyContext;
  readonly planner: BatchPlanner;
  readonly log: RunLog;
  readonly now: () => number;
  readonly timers?: Timers | undefined;
  readonly hooks: RoomHooks;
}

/** What the rooms ask of the run that composes them. */
export interface RoomsHost {
  /** Steps below this may have been served (read through the run: a cluster replica widens it). */
  servedBound(): number;
  /** Throws FAILED_PRECONDITION for a closed run. */
  assertOpen(): void;
  state(): "open" | "closed";
  setState(s: "open" | "closed"): void;
}

export interface RunRooms {
  readonly journal: RunJournal;
  readonly book: VersionBook;
  readonly serving: Serving;
  readonly admission: Admission;
  readonly evals: EvalProbes;
  readonly intake: ReportIntake;
  readonly pacer: Pacer;
  readonly aggregation: AggregationQueue;
  readonly commits: StrategyCommit;
  readonly reporting: ReportingDeps;
  readonly recovery: Recovery;
}

export function composeRooms(spec: RoomsSpec, host: RoomsHost): RunRooms {
  const { config, hooks, planner } = spec;
  const runId = config.id;
  const timers = spec.timers ?? realTimers;
  const onError = (step: number, e: unknown): void => hooks.strategyError(step, e);
  const journal = new RunJournal(spec.log);
  const write = (events: readonly RunEvent[]): Promise<void> => journal.write(events);
  const serving = new Serving(runId, planner, spec.domains.map((d) => d.train));
  const globalBatch = serving.globalBatch.bind(serving);
  const book = new VersionBook(
    (v) => {
      planner.addVersion(v);
      serving.versionApplied();
    },
    (v) => hooks.version(v),
  );
  const admission = new Admission({
    runId,
    maxLookahead: config.maxLookahead,
    fixedWeights: spec.strategy.fixed === true,
    write,
    servedBound: () => host.servedBound(),
    assertOpen: () => host.assertOpen(),
    onBackgroundError: onError,
  });
  const evals = new EvalProbes(config, spec.domains, spec.strategy.structureProbes?.(spec.params) === true);
  const intake = new ReportIntake(runId, config.batchSize);
  const pacer = new Pacer(spec.now, timers, config.aggregationTimeoutMs);
  const commits = new StrategyCommit({
    runId,
    strategy: spec.strategy,
    ctx: spec.ctx,
    params: spec.params,
    planner,
    versions: book,
    log: { write },
    globalBatch,
    servedBound: () => host.servedBound(),
    hold: (from) => admission.hold(from),
    addEvalStep: (step) => evals.add(step),
    onError,
    onUpdate: (seconds) => hooks.strategyUpdate(seconds),
    // The eval-loss gauges show probes in order; a structure eval's shuffled losses are the strategy's.
    onAggregated: (step, mean, evalLoss) => hooks.aggregated(step, mean, evals.structure && isShuffledEvalStep(step) ? null : evalLoss),
  });
  const aggregation: AggregationQueue = new AggregationQueue({
    batchSize: config.batchSize,
    timeoutMs: config.aggregationTimeoutMs,
    now: spec.now,
    timers,
    isOpen: () => host.state() === "open",
    fold: (step, slices) => foldReady({ runId, commits, serving, aggregation, journal }, step, slices),
    onError,
  });
  const reporting: ReportingDeps = {
    runId,
    names: spec.names,
    intake,
    aggregation,
    pacer,
    journal,
    globalBatch,
    servedBound: () => host.servedBound(),
    currentVersion: () => book.current.version,
    onStale: (step, first) => hooks.stale(step, first),
    onSignal: (e) => hooks.signal(e),
  };
  const recovery = new Recovery({
    runId,
    versions: book,
    admission,
    aggregation,
    intake,
    evals,
    strategy: commits,
    state: () => host.state(),
    setState: (s) => host.setState(s),
  });
  return { journal, book, serving, admission, evals, intake, pacer, aggregation, commits, reporting, recovery };
}

/** Fold a ready step into the strategy, journal it (and any new version), then commit. */
async function foldReady(
  r: { runId: string; commits: StrategyCommit; serving: Serving; aggregation: AggregationQueue; journal: RunJournal },
  step: number,
  slices: SliceReport[],
): Promise<void> {
  const out = r.commits.update(step, slices);
  const body = { runId: r.runId, step, slices: slices.map((s) => s.offset), evalStep: null, ...r.serving.stepRecord(step) };
  const events: RunEvent[] = [{ type: EventType.Aggregated, body }];
  r.aggregation.finish(step);
  if (out) await r.commits.commit(step, out, events, 0);
  else await r.journal.write(events);
}
