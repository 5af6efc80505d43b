/**
 * Per-step aggregation of reports across ranks. Slices are keyed by their first global
 * slot, so reports from any world size that divides the batch add up to the same global
 * step; a step is complete when its slices cover all B slots.
 *
 * In memory a slice's per-sample losses stay the Float32Array the report was decoded into
 * (`SliceReport`); base64 is the journal record's encoding only (`SignalsEvent`), applied
 * when the record is written and undone once when it is read back.
 */
import type { SignalsEvent } from "../history/events.js";
import type { StepSignals } from "../../strategies/types.js";
import type { BatchPlanner, GlobalBatch } from "../sampling/index.js";

/** A validated report of one slice, as the run keeps it until its step is folded. */
export interface SliceReport {
  readonly step: number;
  readonly offset: number;
  readonly slots: number;
  readonly hash: string;
  readonly lossSum: readonly number[];
  readonly count: readonly number[];
  readonly sampleLosses: Float32Array | null;
  readonly refLossSum: readonly number[] | null;
  readonly refLosses: Float32Array | null;
  readonly evalLoss: Readonly<Record<string, number>> | null;
}

/** Either shape of a slice's signals: per-sample losses as floats, or as the journal's base64. */
export type SliceSignals = SliceReport | SignalsEvent;

function floats(v: Float32Array | string | null | undefined): Float32Array | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Float32Array) return v;
  return new Float32Array(new Uint8Array(Buffer.from(v, "base64")).buffer);
}

/** A journal record read back (the one base64 decoding). */
export function sliceOfRecord(e: SignalsEvent): SliceReport {
  return { ...e, sampleLosses: floats(e.sampleLosses), refLosses: floats(e.refLosses) };
}

/** The journal record of a slice report. */
export function recordOfSlice(runId: string, r: SliceReport): SignalsEvent {
  const b64 = (a: Float32Array | null): string | null => (a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64") : null);
  return {
    runId,
    step: r.step,
    offset: r.offset,
    slots: r.slots,
    hash: r.hash,
    lossSum: [...r.lossSum],
    count: [...r.count],
    sampleLosses: b64(r.sampleLosses),
    refLossSum: r.refLossSum ? [...r.refLossSum] : null,
    refLosses: b64(r.refLosses),
    evalLoss: r.evalLoss ? { ...r.evalLoss } : null,
  };
}

export class StepAggregate {
  readonly step: number;
  /** Reports by slice offset. */
  readonly slices = new Map<number, SliceReport>();
  covered = 0;
  /** When the first report arrived (ms, for the aggregation timeout). */
  readonly firstAt: number;

  constructor(step: number, now: number) {
    this.step = step;
    this.firstAt = now;
  }

  /** The slice overlapping [offset, offset + slots) that is not exactly that slice, if any. */
  overlapping(offset: number, slots: number): SliceReport | null {
    for (const s of this.slices.values()) {
      if (s.offset === offset && s.slots === slots) continue;
      if (s.offset < offset + slots && offset < s.offset + s.slots) return s;
    }
    return null;
  }

  add(e: SliceReport): void {
    this.slices.set(e.offset, e);
    this.covered += e.slots;
  }

  complete(batchSize: number): boolean {
    return this.covered >= batchSize;
  }
}

/** Fold the given slices of a step into the strategy's input. */
export function foldSignals(
  step: number,
  k: number,
  slices: readonly SliceSignals[],
  served: readonly number[],
  servedTotal: readonly number[],
  slicePlan: (offset: number, slots: number) => { domains: Uint32Array; samples: Float64Array },
): StepSignals {
  const lossSum = new Array<number>(k).fill(0);
  const count = new Array<number>(k).fill(0);
  let ref: number[] | null = null;
  let refCount: number[] | null = null;
  let evalLoss: (number | null)[] | null = null;
  let samples: { domain: number[]; sample: number[]; loss: number[]; ref: (number | null)[] } | null = null;
  const ordered = [...slices].sort((a, b) => a.offset - b.offset);
  for (const s of ordered) {
    for (let d = 0; d < k; d++) {
      lossSum[d]! += s.lossSum[d]!;
      count[d]! += s.count[d]!;
    }
    if (s.refLossSum) {
      ref ??= new Array<number>(k).fill(0);
      refCount ??= new Array<number>(k).fill(0);
      for (let d = 0; d < k; d++) {
        ref[d]! += s.refLossSum[d]!;
        refCount[d]! += s.count[d]!;
      }
    }
    if (s.evalLoss) {
      evalLoss ??= new Array<number | null>(k).fill(null);
      for (const [d, v] of Object.entries(s.evalLoss)) evalLoss[Number(d)] = v;
    }
    if (s.sampleLosses) {
      samples ??= { domain: [], sample: [], loss: [], ref: [] };
      const losses = floats(s.sampleLosses)!;
      const refs = floats(s.refLosses);
      const plan = slicePlan(s.offset, s.slots);
      for (let i = 0; i < losses.length; i++) {
        samples.domain.push(plan.domains[i]!);
        samples.sample.push(plan.samples[i]!);
        samples.loss.push(losses[i]!);
        samples.ref.push(refs ? refs[i]! : null);
      }
    }
  }
  return { step, lossSum, count, refLossSum: ref, refCount, evalLoss, served, samples, servedTotal };
}

/**
 * One step's strategy input from its reported slices: what the server feeds `update` when
 * it aggregates a step and what `replay simulate` feeds it offline (one function, so both
 * fold a step the same way). `batch` plans the step's global batch, only when a slice
 * carries per-sample losses.
 */
export function foldStep(planner: BatchPlanner, step: number, slices: readonly SliceSignals[], batch: () => GlobalBatch): StepSignals {
  const served = Array.from(planner.stepCounts(step));
  const servedTotal = Array.from(planner.cumulative(step + 1));
  return foldSignals(step, planner.domainCount, slices, served, servedTotal, (offset, slots) => {
    const g = batch();
    return { domains: g.domains.subarray(offset, offset + slots), samples: g.samples.subarray(offset, offset + slots) };
  });
}
