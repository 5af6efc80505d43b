/**
 * Report intake: how a validated report relates to what the run already has, and the
 * bounded memories that decide it.
 *
 * - A report identical to one recorded for the same slice is a duplicate (acknowledged,
 *   not recorded again); one that differs is refused while its step is being aggregated.
 * - A report for a step the strategy has already consumed changes nothing, whatever its
 *   values: a trainer resumed from a checkpoint re-trains those steps, and its losses are
 *   never bit-identical to the first attempt's (GPU kernels are not deterministic). It is
 *   acknowledged as a duplicate ("stale"), not journaled, counted, and logged once per run.
 * - A refusal names a world-size mismatch when that is what is wrong: the slice size each
 *   recent step was reported with is remembered.
 */
import { precondition } from "../errors.js";
import type { SliceReport } from "./aggregator.js";
import type { NormalisedReport } from "./report.js";

/** Duplicate-detection memory: report hashes kept for this many slices. */
const HASH_WINDOW = 65_536;
/** Steps whose reported slice size is remembered (to name a world-size mismatch). */
const STEP_SLOTS = 4096;

/** One report's slice: step, geometry and the world size it was sent with. */
export interface ReportSlice {
  readonly step: number;
  readonly offset: number;
  readonly slots: number;
  readonly worldSize: number;
}

/** What to do with a report (see `ReportIntake.classify`). */
export type Intake =
  | { readonly kind: "stale" }
  | { readonly kind: "duplicate" }
  /** The identical report is being written: acknowledge once that write is durable. */
  | { readonly kind: "in-flight"; readonly done: Promise<void> }
  | { readonly kind: "new" };

export class ReportIntake {
  /** Report hash per slice ("step:offset"), the last HASH_WINDOW slices. */
  private readonly hashes = new Map<string, string>();
  private readonly stepSlots = new Map<number, number>();
  private readonly inFlight = new Map<string, { hash: string; done: Promise<void> }>();
  /** Reports for already-aggregated steps acknowledged without recording. */
  staleReports = 0;

  constructor(
    private readonly runId: string,
    private readonly batchSize: number,
  ) {}

  /**
   * Classify a report with hash `hash`; throws FAILED_PRECONDITION for one that differs
   * from what its slice was already reported with while the step is still open.
   */
  classify(s: ReportSlice, hash: string, lastAggregated: number): Intake {
    const key = `${s.step}:${s.offset}`;
    const flying = this.inFlight.get(key);
    if (!flying && s.step <= lastAggregated && this.hashes.get(key) !== hash) return { kind: "stale" };
    if (flying) {
      this.same(s, flying.hash, hash);
      return { kind: "in-flight", done: flying.done };
    }
    const known = this.hashes.get(key);
    if (known !== undefined) {
      this.same(s, known, hash);
      return { kind: "duplicate" };
    }
    return { kind: "new" };
  }

  /** Count a stale report; true for the run's first. */
  noteStale(): boolean {
    return this.staleReports++ === 0;
  }

  /** Remember a report about to be written (before its write: a snapshot may include it). */
  remember(e: Pick<SliceReport, "step" | "offset" | "slots" | "hash">): void {
    this.noteSlots(e.step, e.slots);
    this.rememberHash(`${e.step}:${e.offset}`, e.hash);
  }

  /** Track a report's write, so an identical one arriving meanwhile waits for it. */
  async writing(e: Pick<SliceReport, "step" | "offset" | "hash">, done: Promise<void>): Promise<void> {
    const key = `${e.step}:${e.offset}`;
    this.inFlight.set(key, { hash: e.hash, done });
    try {
      await done;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Refuse a slice overlapping an already reported one of another geometry. */
  refuseOverlap(s: ReportSlice, clash: { offset: number; slots: number }): never {
    this.assertStepGeometry(s);
    throw precondition(
      `slice [${s.offset}, ${s.offset + s.slots}) overlaps an already reported slice [${clash.offset}, ${clash.offset + clash.slots}) of step ${s.step}: all ranks of a step must use one world size`,
    );
  }

  /** The report hashes, for a snapshot. */
  hashEntries(): [string, string][] {
    return [...this.hashes.entries()];
  }

  /** Replace the report hashes (a snapshot's). */
  restoreHashes(entries: readonly (readonly [string, string])[]): void {
    this.hashes.clear();
    for (const [k, h] of entries) this.hashes.set(k, h);
  }

  memoryStats(): { recentHashes: number; inFlight: number } {
    return { recentHashes: this.hashes.size, inFlight: this.inFlight.size };
  }

  private same(s: ReportSlice, known: string, hash: string): void {
    if (known === hash) return;
    this.assertStepGeometry(s);
    throw precondition(
      `step ${s.step} slice at slot ${s.offset} was already reported with different values; a re-sent report must be identical (resumed trainers re-send the same losses)`,
    );
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
  private assertStepGeometry(s: ReportSlice): void {
    const seen = this.stepSlots.get(s.step);
    if (seen === undefined || seen === s.slots) return;
    throw precondition(
      `world_size ${s.worldSize} (${s.slots} slots per rank) does not match the other reports of step ${s.step} of run "${this.runId}", which used world_size ${this.batchSize / seen} (${seen} slots per rank): all ranks of a step must use one world size`,
    );
  }

  private rememberHash(key: string, hash: string): void {
    this.hashes.set(key, hash);
    if (this.hashes.size > HASH_WINDOW) this.hashes.delete(this.hashes.keys().next().value!);
  }
}

/** A validated report as the run keeps it (per-sample losses stay the decoded Float32Arrays). */
export function sliceReport(s: ReportSlice, norm: NormalisedReport): SliceReport {
  return {
    step: s.step,
    offset: s.offset,
    slots: s.slots,
    hash: norm.hash,
    lossSum: norm.lossSum,
    count: norm.count,
    sampleLosses: norm.sampleLosses,
    refLossSum: norm.refLossSum,
    refLosses: norm.refLosses,
    evalLoss: norm.evalLoss,
  };
}
