/**
 * What a run tells the outside world: the observer (metrics, logs) and the error hooks,
 * with the injection seams it runs on (journal, clock, timers). Generic over the run type,
 * so this module names no `Run`: run.ts instantiates it (`RunObserver`, `RunDeps`), and
 * the rooms stay free of the composer.
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
