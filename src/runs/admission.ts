/**
 * Serving admission: which steps may be served now, and the journaled lease that bounds
 * what may have been served before a crash (DESIGN.md, determinism).
 *
 * - A new version takes effect past every served step, and serving of steps at or past it
 *   waits until its record is durable: the commit `hold`s serving from its first step.
 * - After a crash, steps below the journaled lease may have been served, so the first new
 *   version starts after the lease. Leases are renewed in small steps ahead of serving
 *   (LEASE_CHUNK), in the background, so serving rarely waits and the jump is small; a clean
 *   drain journals the exact frontier, which replaces the lease on recovery.
 * - A step more than `maxLookahead` past the frontier is refused: serving it would move the
 *   frontier there, and every later version would take effect past it (one stray far-future
 *   request would freeze adaptation for good). Not for fixed weights, where it cannot matter.
 */
import { outOfRange } from "../errors.js";
import { EventType, type RunEvent } from "../history/events.js";

/**
 * Steps leased per journal write: after a crash, the first new version takes effect at
 * most this many steps past the last served one. The lease is renewed when serving comes
 * within LEASE_RENEW of its end, in the background, so serving rarely waits on it.
 */
export const LEASE_CHUNK = 32;
const LEASE_RENEW = LEASE_CHUNK / 2;

export interface AdmissionDeps {
  readonly runId: string;
  readonly maxLookahead: number;
  /** The strategy never commits a version after init (no lookahead limit). */
  readonly fixedWeights: boolean;
  /** Where lease records go (the run's journal). */
  write(events: readonly RunEvent[]): Promise<void>;
  /** Steps below this may have been served, by anyone (a cluster run raises it). */
  servedBound(): number;
  /** Throws if the run is closed (checked again after every wait). */
  assertOpen(): void;
  /** A background lease renewal failed (the next admission waits on a fresh one). */
  onBackgroundError(step: number, e: unknown): void;
}

export class Admission {
  /** Highest step served to any rank since this process started (-1: none). */
  frontier = -1;
  private leasedUpTo = 0;
  /** Steps below this may have been served before a restart. */
  private recoveredBound = 0;
  private leaseWrite: Promise<void> | null = null;
  /** Serving of steps at or past `fromStep` waits for `done` (a commit being made durable). */
  private gate: { fromStep: number; done: Promise<void> } | null = null;

  constructor(private readonly deps: AdmissionDeps) {}

  /** Steps below this may have been served by this process or, after recovery, before it. */
  get localBound(): number {
    return Math.max(this.frontier + 1, this.recoveredBound);
  }

  /** Refuse a step more than `maxLookahead` past the serving frontier (see the header). */
  checkLookahead(step: number): void {
    if (this.deps.fixedWeights) return;
    const frontier = this.deps.servedBound() - 1;
    const max = this.deps.maxLookahead;
    if (step - frontier > max) {
      throw outOfRange(
        `step ${step} is ${step - frontier} steps past the serving frontier (step ${frontier}) of run "${this.deps.runId}", more than maxLookahead (${max}): ` +
          `serving it would delay every later weights version past it. Ask for steps in order, or raise maxLookahead in the run config`,
      );
    }
  }

  /**
   * Wait until `step` may be served: no pending commit takes effect at or before it, and
   * it is inside the durable lease. Then move the frontier, synchronously with the last check.
   */
  async admit(step: number): Promise<void> {
    for (;;) {
      if (this.gate && step >= this.gate.fromStep) {
        await this.gate.done;
        continue;
      }
      if (step >= this.leasedUpTo) {
        await this.extendLease(step);
        continue;
      }
      break;
    }
    this.deps.assertOpen();
    if (step > this.frontier) this.frontier = step;
    if (step + LEASE_RENEW >= this.leasedUpTo && !this.leaseWrite) {
      this.extendLease(step).catch((e: unknown) => this.deps.onBackgroundError(step, e));
    }
  }

  /** Hold serving of steps at or past `fromStep` until the returned release is called. */
  hold(fromStep: number): () => void {
    let release!: () => void;
    const gate = { fromStep, done: new Promise<void>((r) => (release = r)) };
    this.gate = gate;
    return () => {
      if (this.gate === gate) this.gate = null;
      release();
    };
  }

  /** Lease steps up to `step` + LEASE_CHUNK (one write in flight at a time). */
  private extendLease(step: number): Promise<void> {
    if (this.leaseWrite) return this.leaseWrite;
    const upTo = step + LEASE_CHUNK;
    this.leaseWrite = this.deps
      .write([{ type: EventType.Lease, body: { runId: this.deps.runId, upTo } }])
      .then(() => {
        this.leasedUpTo = Math.max(this.leasedUpTo, upTo);
      })
      .finally(() => {
        this.leaseWrite = null;
      });
    return this.leaseWrite;
  }

  // Recovery

  /** A journaled lease. A drained lease is exact (every stream had ended): it replaces the bound. */
  replayLease(upTo: number, drained: boolean): void {
    this.leasedUpTo = drained ? upTo : Math.max(this.leasedUpTo, upTo);
  }

  /** A snapshot's lease. */
  restoreLease(upTo: number): void {
    this.leasedUpTo = Math.max(this.leasedUpTo, upTo);
  }

  /** The lease a snapshot records: at least every step served so far. */
  get snapshotLease(): number {
    return Math.max(this.leasedUpTo, this.frontier + 1);
  }

  /** End of recovery: steps below the lease may have been served before the crash. */
  finishRecovery(): void {
    this.recoveredBound = this.leasedUpTo;
  }
}
