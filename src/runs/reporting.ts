/**
 * The report flow, in the order the determinism contract needs: a report is validated
 * against the slice its rank was served, classified by intake (new, duplicate, in flight,
 * stale), and a new one is added to its step's aggregate *before* its journal write (so a
 * snapshot taken meanwhile contains it and compaction can never drop it), then
 * acknowledged only once the write is durable.
 */
import { precondition } from "../errors.js";
import { EventType, type SignalsEvent } from "../history/events.js";
import type { GlobalBatch } from "../sampling/index.js";
import { recordOfSlice } from "./aggregator.js";
import type { AggregationQueue } from "./aggregation.js";
import type { ReportAck } from "./hooks.js";
import { sliceReport, type ReportIntake, type ReportSlice } from "./intake.js";
import type { Pacer } from "./pacing.js";
import { normaliseReport, type ReportInput } from "./report.js";
import type { RunJournal } from "./run-journal.js";

export interface ReportingDeps {
  readonly runId: string;
  readonly names: readonly string[];
  readonly intake: ReportIntake;
  readonly aggregation: AggregationQueue;
  readonly pacer: Pacer;
  readonly journal: RunJournal;
  globalBatch(step: number): GlobalBatch;
  servedBound(): number;
  currentVersion(): number;
  /** A stale report was acknowledged; `first`: the run's first. */
  onStale(step: number, first: boolean): void;
  /** A new report is durable (its journal record). */
  onSignal(e: SignalsEvent): void;
}

/** Validate, journal and aggregate one report of a checked slice. Resolves once it is durable. */
export async function acceptReport(d: ReportingDeps, s: ReportSlice, input: ReportInput): Promise<ReportAck> {
  const { step, offset, slots } = s;
  const bound = d.servedBound();
  if (step >= bound) {
    throw precondition(`step ${step} of run "${d.runId}" has not been served yet (served up to ${bound - 1}); report after receiving the batch`);
  }
  const ack = (duplicate: boolean): ReportAck => ({ duplicate, stepComplete: d.aggregation.isComplete(step), version: d.currentVersion() });
  const g = d.globalBatch(step);
  const norm = normaliseReport(input, { offset, domains: g.domains.subarray(offset, offset + slots) }, d.names);
  const intake = d.intake.classify(s, norm.hash, d.aggregation.lastAggregated);
  switch (intake.kind) {
    case "stale":
      d.onStale(step, d.intake.noteStale());
      d.pacer.noteReported(offset, slots, step);
      return { duplicate: true, stepComplete: true, version: d.currentVersion() };
    case "in-flight":
      await intake.done;
      return ack(true);
    case "duplicate":
      d.pacer.noteReported(offset, slots, step);
      return ack(true);
    case "new":
      break;
  }
  const clash = d.aggregation.pendingFor(step)?.overlapping(offset, slots);
  if (clash) d.intake.refuseOverlap(s, clash);
  const r = sliceReport(s, norm);
  const e = recordOfSlice(d.runId, r);
  // State first, durability second (see the header). The ack waits.
  d.aggregation.aggregateFor(step).add(r);
  d.intake.remember(r);
  const done = d.journal.write([{ type: EventType.Signals, body: e }]);
  done.catch(() => undefined); // awaited below and by concurrent duplicates
  await d.intake.writing(r, done);
  d.onSignal(e);
  d.pacer.noteReported(offset, slots, step);
  d.aggregation.schedule();
  return ack(false);
}
