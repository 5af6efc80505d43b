/**
 * Serving under the cluster's frontier rule (etcd-version-log.ts): a replica serves step s
 * only once s is inside its reservation in etcd, so the leader never commits a version
 * that takes effect at a step some replica served already.
 *
 * Why a chunk ahead: one etcd write per served step would put a consensus round trip on
 * every batch. A reservation covers `reserveChunk` steps past the one asked for, and the
 * next one starts when half of the chunk is left, so serving rarely waits on etcd; the
 * price is that a version takes effect up to a chunk later than in one process. One write
 * at a time per run: concurrent requests wait on the same one.
 */
import { etcdFailure } from "./errors.js";
import { BEHIND, type EtcdVersionLog } from "./etcd-version-log.js";
import type { PeerCounters } from "./peer-stats.js";

export interface ReservationDeps {
  readonly runId: string;
  readonly log: EtcdVersionLog;
  /** Steps reserved per etcd write. */
  readonly reserveChunk: number;
  readonly counters: PeerCounters;
  /** The first log entry this replica has not applied. */
  nextSeq(): number;
  /** Resolves once every entry below `seq` is applied (or `ms` passed). */
  waitApplied(seq: number, ms: number): Promise<void>;
}

export class FrontierReservation {
  /** Highest step this replica reserved (-1: none). */
  reservedUpTo = -1;
  /** Highest step any replica reserved, as this replica last wrote or read it (-1: none). */
  clusterFrontier = -1;
  private reserving: Promise<void> | null = null;

  constructor(private readonly deps: ReservationDeps) {}

  /** Resolves once `step` is reserved; throws UNAVAILABLE (ETCD_UNAVAILABLE, CONTENTION) if it cannot be. */
  async admit(step: number): Promise<void> {
    if (step > this.reservedUpTo - this.deps.reserveChunk / 2 && !this.reserving) this.start(step);
    while (step > this.reservedUpTo) {
      if (!this.reserving) this.start(step);
      await this.reserving;
    }
  }

  /** Re-read the cluster frontier from etcd (it only grows). */
  async refresh(): Promise<number> {
    const f = await this.deps.log.frontier();
    this.clusterFrontier = Math.max(this.clusterFrontier, f.step);
    return this.clusterFrontier;
  }

  private start(step: number): void {
    this.reserving = this.reserve(step).finally(() => (this.reserving = null));
    this.reserving.catch(() => undefined);
  }

  /**
   * Write the reservation; while etcd refuses it because a log entry this replica has not
   * applied exists (BEHIND), apply first and retry: the entry may take effect inside the
   * steps asked for, and serving them before applying it would serve different bytes.
   */
  private async reserve(step: number): Promise<void> {
    const d = this.deps;
    const upTo = Math.max(step, this.reservedUpTo) + d.reserveChunk;
    for (;;) {
      const next = d.nextSeq();
      let r: true | typeof BEHIND;
      try {
        r = await d.log.reserve(upTo, next);
      } catch (e) {
        d.counters.reservationsFailed++;
        throw etcdFailure(`run "${d.runId}": cannot reserve steps in etcd`, e);
      }
      if (r === true) {
        d.counters.reservations++;
        this.reservedUpTo = Math.max(this.reservedUpTo, upTo);
        this.clusterFrontier = Math.max(this.clusterFrontier, upTo);
        return;
      }
      d.counters.reservationsBehind++;
      await d.waitApplied(next + 1, 5000);
    }
  }
}
