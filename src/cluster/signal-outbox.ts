/**
 * Signals out of consensus: a replica acknowledges a report once it is durable in its own
 * journal (the single-process path), then hands the slice to the run's outbox here, which
 * forwards it to the run's leader over gRPC (forward.ts). On the leader the outbox feeds
 * its own decider instead.
 *
 * Why bounded and lossy: a forward that fails (no leader yet, a leader that just stepped
 * down) is kept for the next flush, up to OUTBOX_CAP slices, oldest dropped first. A lost
 * slice costs adaptivity (the strategy sees fewer losses), never reproducibility: batches
 * depend only on committed versions.
 */
import type { SignalsEvent } from "../history/events.js";
import type { RunObserver } from "../runs/run.js";
import type { EtcdVersionLog } from "./etcd-version-log.js";
import type { ForwardSender } from "./forward.js";
import { currentLeader } from "./leadership.js";
import type { NodeStats, PeerCounters } from "./peer-stats.js";

/** Slices kept per run while no leader takes them. */
export const OUTBOX_CAP = 16_384;

/** How long a forward may take before it counts as failed (ms). */
const FORWARD_DEADLINE_MS = 2000;

export interface OutboxDeps {
  readonly runId: string;
  readonly nodeId: string;
  readonly log: EtcdVersionLog;
  readonly sender: ForwardSender;
  readonly counters: PeerCounters;
  readonly stats: NodeStats;
}

export class SignalOutbox {
  private slices: SignalsEvent[] = [];
  /** The leader last forwarded to; "pending" while a forward is in flight (one at a time). */
  private leaderAddress: string | null = null;

  constructor(private readonly deps: OutboxDeps) {}

  /** An acknowledged report slice of this run. */
  push(e: SignalsEvent): void {
    this.slices.push(e);
    this.trim();
  }

  /**
   * Hand everything queued on: to `local` when this replica leads (its decider), else to
   * the leader over gRPC, in step order, unless a forward is in flight already.
   */
  flush(local: ((slices: SignalsEvent[]) => void) | null): void {
    if (this.slices.length === 0) return;
    if (local) {
      local(this.slices.splice(0));
      return;
    }
    if (this.leaderAddress === "pending") return;
    const slices = this.slices.splice(0).sort((a, b) => a.step - b.step || a.offset - b.offset);
    const address = this.leaderAddress;
    this.leaderAddress = "pending";
    void this.forward(address, slices);
  }

  private async forward(address: string | null, slices: SignalsEvent[]): Promise<void> {
    const d = this.deps;
    const to = await this.sent(address, slices).catch(() => null);
    if (to !== null) {
      d.stats.forwardsSent += slices.length;
      d.counters.forwardsSent += slices.length;
      this.leaderAddress = to;
      return;
    }
    // Keep them for the next leader (bounded by OUTBOX_CAP); look the leader up again.
    d.stats.forwardsFailed += slices.length;
    d.counters.forwardsFailed += slices.length;
    this.slices.unshift(...slices);
    this.trim();
    this.leaderAddress = null;
  }

  /** Forward to `address` (or the leader named in etcd): the address that took them, null if none did. */
  private async sent(address: string | null, slices: SignalsEvent[]): Promise<string | null> {
    const d = this.deps;
    const to = address ?? (await currentLeader(d.log))?.address ?? null;
    if (!to) return null;
    const ok = await d.sender.send(to, { runId: d.runId, from: d.nodeId, slices }, FORWARD_DEADLINE_MS);
    return ok ? to : null;
  }

  private trim(): void {
    if (this.slices.length > OUTBOX_CAP) this.slices.splice(0, this.slices.length - OUTBOX_CAP);
  }
}

/**
 * The observer a cluster run gets: `inner`'s, plus every acknowledged signal into the
 * run's outbox (`outboxOf`: undefined while the replica does not follow the run yet).
 */
export function forwardingObserver(inner: RunObserver | undefined, outboxOf: (runId: string) => SignalOutbox | undefined): Required<RunObserver> {
  // Required<>: a method added to RunObserver fails to compile here until it is passed on
  // (staleReport was once dropped this way, and cluster mode never counted stale reports).
  return {
    served: (run, slice, s, where) => inner?.served?.(run, slice, s, where),
    signal: (run, e) => {
      inner?.signal?.(run, e);
      outboxOf(run.id)?.push(e);
    },
    rejected: (run, reason) => inner?.rejected?.(run, reason),
    staleReport: (run, step) => inner?.staleReport?.(run, step),
    aggregated: (run, step, loss, evalLoss) => inner?.aggregated?.(run, step, loss, evalLoss),
    version: (run, v) => inner?.version?.(run, v),
    strategyUpdate: (run, s) => inner?.strategyUpdate?.(run, s),
  };
}
