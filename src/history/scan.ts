/**
 * The one reading of a run's event history. A snapshot (a checkpoint) carries the slices
 * reported for steps not yet aggregated; the record of such a slice may come before the
 * snapshot (it was durable first) or after it (its write was in flight while the snapshot
 * was taken). `HistoryResolver` turns the raw record sequence into events in which every
 * accepted slice appears exactly once, as a Signals event: a snapshot is followed by the
 * pending slices not seen yet, and a later record of a slice already given is dropped.
 * Recovery, offline replay and the report all read through it, so none of them handles
 * snapshot-pending itself (before, each did, differently: recovery counted such a slice
 * twice toward a step's coverage, replay dropped it after a compaction).
 *
 * Memory: per run, the keys of slices of steps not yet aggregated.
 */
import { Journal } from "../journal/index.js";
import type { StoredRecord } from "../journal/index.js";
import { decodeEvent, EventType, type RunEvent, type SignalsEvent } from "./events.js";

interface RunSeen {
  /** Slice keys given so far, by step, for steps not yet aggregated. */
  readonly open: Map<number, Set<number>>;
}

export class HistoryResolver {
  private readonly runs = new Map<string, RunSeen>();

  /** The events one stored record stands for (zero, one, or a snapshot and its pending slices). */
  resolve(type: number, payload: Uint8Array): RunEvent[] {
    const e = decodeEvent(type, payload);
    const id = e.body.runId;
    let seen = this.runs.get(id);
    if (!seen) {
      seen = { open: new Map() };
      this.runs.set(id, seen);
    }
    switch (e.type) {
      case EventType.Snapshot: {
        const out: RunEvent[] = [e];
        for (const p of e.body.pending) if (this.give(seen, p)) out.push({ type: EventType.Signals, body: p });
        return out;
      }
      case EventType.Signals:
        return this.give(seen, e.body) ? [e] : [];
      case EventType.Aggregated:
        seen.open.delete(e.body.step);
        return [e];
      default:
        return [e];
    }
  }

  /** True the first time a slice is seen (while its step is open). */
  private give(seen: RunSeen, s: SignalsEvent): boolean {
    let offsets = seen.open.get(s.step);
    if (!offsets) {
      offsets = new Set();
      seen.open.set(s.step, offsets);
    }
    if (offsets.has(s.offset)) return false;
    offsets.add(s.offset);
    return true;
  }
}

/** Resolved events of a list of stored records (recovery's `Journal.open` result). */
export function* resolveRecords(records: Iterable<StoredRecord>): Generator<RunEvent> {
  const r = new HistoryResolver();
  for (const rec of records) yield* r.resolve(rec.type, rec.payload);
}

/**
 * Stream a journal folder's resolved events, every segment from the first ("all", what the
 * offline tools read) or from the newest checkpoint (what recovery reads). `onRecord` sees
 * each stored record (progress).
 */
export async function* scanHistory(
  journalDir: string,
  o: { from?: "all" | "checkpoint"; onRecord?: (r: StoredRecord) => void } = {},
): AsyncGenerator<RunEvent> {
  const r = new HistoryResolver();
  for await (const rec of Journal.scan(journalDir, { from: o.from ?? "all" })) {
    o.onRecord?.(rec);
    yield* r.resolve(rec.type, rec.payload);
  }
}
