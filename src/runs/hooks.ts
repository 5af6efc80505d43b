/**
 * What a run tells the outside world: the observer (metrics, logs) and the error hooks,
 * with the injection seams it runs on (journal, clock, timers). Generic over the run type,
 * so this module names no `Run`: run.ts instantiates it (`RunObserver`, `RunDeps`), and
 * the rooms stay free of the composer. The rooms hear the same hooks with the run bound
 * (`RoomHooks`, `bindHooks`), so they never see the run they report on.
 */
import type { RunLog, SignalsEvent, Version } from "../history/events.js";
import type { ServedBatch } from "./served.js";
import type { Timers } from "./timers.js";

/** Callbacks for metrics and logs; every method optional. */
export interface RunObserverOf<R> {
  served?(run: R, batch: ServedBatch, assembleSeconds: number, where: { step: number; rank: number }): void;
  signal?(run: R, e: SignalsEvent): void;
  rejected?(run: R | null, reason: string): void;
  /** A report for a step already aggregated: acknowledged, not recorded (see intake.ts). */
  staleReport?(run: R, step: number): void;
  aggregated?(run: R, step: number, lossMean: readonly (number | null)[], evalLoss: readonly (number | null)[] | null): void;
  version?(run: R, v: Version): void;
  strategyUpdate?(run: R, seconds: number): void;
}

export interface RunDepsOf<R> {
  readonly log: RunLog;
  readonly now: () => number;
  /** The aggregation timeout and pacing waits (default: Node's timers). */
  readonly timers?: Timers;
  readonly observer?: RunObserverOf<R>;
  /** Called when a strategy throws (a bug): the step is still marked aggregated. */
  readonly onStrategyError?: (run: R, step: number, e: unknown) => void;
  /** Called on a run's first stale report (a step already aggregated), to log it once. */
  readonly onFirstStaleReport?: (run: R, step: number) => void;
}

/** What a report's acknowledgement says. */
export interface ReportAck {
  duplicate: boolean;
  stepComplete: boolean;
  version: number;
}

/** The observer and error hooks with the run bound: what the rooms call (rooms.ts). */
export interface RoomHooks {
  strategyError(step: number, e: unknown): void;
  /** A stale report was acknowledged; `first`: the run's first. */
  stale(step: number, first: boolean): void;
  signal(e: SignalsEvent): void;
  version(v: Version): void;
  strategyUpdate(seconds: number): void;
  aggregated(step: number, lossMean: readonly (number | null)[], evalLoss: readonly (number | null)[] | null): void;
}

export function bindHooks<R>(run: R, deps: RunDepsOf<R>): RoomHooks {
  return {
    strategyError: (step, e) => deps.onStrategyError?.(run, step, e),
    stale: (step, first) => {
      if (first) deps.onFirstStaleReport?.(run, step);
      deps.observer?.staleReport?.(run, step);
    },
    signal: (e) => deps.observer?.signal?.(run, e),
    version: (v) => deps.observer?.version?.(run, v),
    strategyUpdate: (seconds) => deps.observer?.strategyUpdate?.(run, seconds),
    aggregated: (step, mean, evalLoss) => deps.observer?.aggregated?.(run, step, mean, evalLoss),
  };
}
