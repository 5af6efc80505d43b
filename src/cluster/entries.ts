/**
 * What a run's etcd log entry says (its `body`): a leader decision that changes the bytes
 * served, so every replica must apply it at the same step.
 *
 * - A weights version: the single-process VersionEvent, plus `evalStep` when the same
 *   strategy update also asked for eval losses (DESIGN.md: eval requests are served like
 *   versions, to rank 0 of that step, with the run's probes).
 * - An eval request alone (`kind: "eval"`), for an update that asked for eval losses but
 *   produced no weights (mixflow waiting for its first probe losses, aioli's probe rounds).
 *
 * Both carry the strategy state after the update, so a new leader resumes from the last
 * entry whatever its kind. Log sequence numbers and version ids differ once eval entries
 * exist: version ids stay 1, 2, 3 … (the next id is the count of versions applied).
 * Bodies without `kind` are versions (logs written before eval entries existed).
 */
import type { VersionEvent } from "../history/events.js";

export interface EvalEntry {
  readonly kind: "eval";
  /** Step whose rank-0 batch carries the eval request and probes. */
  readonly evalStep: number;
  /** Step whose update asked for it. */
  readonly committedAtStep: number;
  readonly strategyState: unknown;
}

export type VersionEntry = VersionEvent & { readonly evalStep?: number };

export type EntryBody = VersionEntry | EvalEntry;

export function isEvalEntry(b: EntryBody): b is EvalEntry {
  return (b as { kind?: unknown }).kind === "eval";
}

/** The eval step an entry asks for (null: none). */
export function evalStepOf(b: EntryBody): number | null {
  if (isEvalEntry(b)) return b.evalStep;
  return typeof b.evalStep === "number" ? b.evalStep : null;
}
