/**
 * Journal events of a run: what is written, in this shape, as JSON payloads of journal
 * records. Recovery and offline replay read the same events, so this file is the schema
 * of the on-disk history. Record types are stable numbers: never renumber them.
 */
import type { RunConfig } from "../config/schema.js";
import type { DomainInfo } from "../../strategies/types.js";
import { MixflowError } from "../errors.js";

export const EventType = {
  RunCreated: 1,
  Signals: 2,
  Aggregated: 3,
  Version: 4,
  Lease: 5,
  RunClosed: 6,
  Snapshot: 7,
} as const;
export type EventTypeCode = (typeof EventType)[keyof typeof EventType];

/**
 * One file of a split as it was at creation (or is now): computed by
 * src/sources/data-fingerprint.ts, recorded here because it is part of the journal's schema.
 */
export interface FileFingerprint {
  /** Absolute path. */
  readonly path: string;
  readonly size: number;
  /** "sha256:<hex>" (whole file) or "sha256-blocks64x16k:<hex>" (sampled blocks). */
  readonly hash: string;
}

/** A domain split's files, in serving order. */
export interface SplitFingerprint {
  readonly domain: string;
  readonly split: "train" | "eval";
  readonly files: readonly FileFingerprint[];
}

export interface RunCreatedEvent {
  runId: string;
  config: RunConfig;
  /**
   * What the strategy knew about each domain at creation (sizes, duplicate clusters,
   * compressibility), so offline replay can plan and re-run strategies without the data.
   */
  domains?: DomainInfo[];
  /**
   * Content fingerprints of every split's files at creation (src/sources/data-fingerprint.ts),
   * checked at recovery and by `replay verify`. Absent in journals written before them.
   */
  data?: SplitFingerprint[];
}

/** A validated report of one rank's slice of one step, normalised. */
export interface SignalsEvent {
  runId: string;
  step: number;
  /** First global slot and slot count of the slice reported. */
  offset: number;
  slots: number;
  /** Hash of the report's content, for duplicate detection. */
  hash: string;
  /** Per-domain sums and counts over the slice (length K, sparse-able but kept dense for simplicity). */
  lossSum: number[];
  count: number[];
  /** Per-sample losses as float32 LE base64 (aligned with the slice), or null. */
  sampleLosses: string | null;
  /** Per-domain reference loss sums aligned with `count`, or null. */
  refLossSum: number[] | null;
  /** Per-sample reference losses as float32 LE base64 (aligned with `sampleLosses`); absent in older journals. */
  refLosses?: string | null;
  /** Eval losses by domain index, or null. */
  evalLoss: Record<string, number> | null;
}

/** Digests of the payload bytes served for a step (computed by src/sources/content-digest.ts). */
export interface StepContent {
  /** The slices hashed, flat [offset, slots, offset, slots, …] in offset order. */
  readonly ranges: number[];
  /** Per-domain digest (uint32) over those slices' payload bytes; 0 where a domain has no slot. */
  readonly domains: number[];
}

/** A step's signals were folded into the strategy (slices: the offsets included). */
export interface AggregatedEvent {
  runId: string;
  step: number;
  slices: number[];
  /** Step at which the batch carries eval_requested because of this update, or null. */
  evalStep: number | null;
  /** Digest of the step's global batch as served (checked by `mixflow replay verify`). */
  digest?: string;
  /**
   * Per-domain digests of the payload bytes served for this step (src/sources/content-digest.ts),
   * checked by `replay verify --data`. Absent in older journals and for steps served before a restart.
   */
  content?: StepContent;
}

/**
 * A committed set of domain weights: THE version record. The journal stores it inside
 * VersionEvent and SnapshotEvent; the run, GetWeights, replay and the report all use it.
 */
export interface Version {
  /** 1, 2, 3, … in commit order. */
  readonly version: number;
  /** First step served with these weights. */
  readonly fromStep: number;
  readonly weights: readonly number[];
  /** Curriculum competence per domain, or null. */
  readonly competence: readonly number[] | null;
  /** "init", "planned", or "update at step N". */
  readonly reason: string;
  /** The aggregated step whose update produced it (-1: init or planned). */
  readonly committedAtStep: number;
}

export interface VersionEvent extends Version {
  runId: string;
  /** Strategy state after the update that produced this version (checked at recovery). */
  strategyState: unknown;
}

/** Steps below `upTo` may have been served: new versions start after it. */
export interface LeaseEvent {
  runId: string;
  upTo: number;
  /**
   * Written by a clean shutdown after every stream ended: exactly the steps below `upTo`
   * were served, so this bound replaces (rather than raises) the leased one. Absent in
   * ordinary leases and in journals written before it existed; a reader that ignores it
   * is still correct (only more conservative).
   */
  drained?: boolean;
}

export interface RunClosedEvent {
  runId: string;
}

/** Everything needed to rebuild a run without the records before it. */
export interface SnapshotEvent {
  runId: string;
  config: RunConfig;
  domains?: DomainInfo[];
  state: "open" | "closed";
  versions: Version[];
  strategyState: unknown;
  lastAggregated: number;
  leasedUpTo: number;
  evalSteps: number[];
  pending: SignalsEvent[];
  /** Recent reports' hashes by "step:offset" for duplicate detection. */
  recentHashes: [string, string][];
  /** The creation record's data fingerprints, carried across compaction. */
  data?: SplitFingerprint[];
}

export type RunEvent =
  | { type: typeof EventType.RunCreated; body: RunCreatedEvent }
  | { type: typeof EventType.Signals; body: SignalsEvent }
  | { type: typeof EventType.Aggregated; body: AggregatedEvent }
  | { type: typeof EventType.Version; body: VersionEvent }
  | { type: typeof EventType.Lease; body: LeaseEvent }
  | { type: typeof EventType.RunClosed; body: RunClosedEvent }
  | { type: typeof EventType.Snapshot; body: SnapshotEvent };

/** Where a run writes its events. Resolves once the events are durable (journal). */
export interface RunLog {
  write(events: readonly RunEvent[]): Promise<void>;
}

export function encodeEvent(e: RunEvent): { type: number; payload: Buffer } {
  return { type: e.type, payload: Buffer.from(JSON.stringify(e.body)) };
}

export function decodeEvent(type: number, payload: Uint8Array): RunEvent {
  const body = JSON.parse(Buffer.from(payload).toString("utf8")) as never;
  if (type < EventType.RunCreated || type > EventType.Snapshot) throw new MixflowError("DATA_LOSS", `unknown journal record type ${type}`);
  return { type: type as EventTypeCode, body } as RunEvent;
}
