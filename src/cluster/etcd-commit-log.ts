/**
 * The etcd backend of a run's `VersionLog` (src/runs/versions.ts): where a cluster
 * leader's commits become durable.
 *
 * In one process, two things make a commit safe: the run's journal makes it durable, and
 * the run's own serving gate keeps its from_step past every step served. In a cluster the
 * steps were served by other replicas too, so both are one etcd transaction (the fenced
 * append, leadership.ts): entry n is written only while this replica leads, only if n
 * does not exist, and only past the frontier every replica reserved. A record is therefore
 * not a finished entry but a proposal that places itself past the frontier it is given;
 * the append may ask again when the frontier moved under it, so `make` must be pure.
 * `write` resolves once etcd has committed the entry (a quorum has it on disk) and rejects
 * with a ClusterError: FENCED (no longer the leader), LOG_AHEAD (entry n exists),
 * CONTENTION, or ETCD_UNAVAILABLE.
 *
 * One log per leadership term: it appends at consecutive sequence numbers, from the first
 * entry the new leader had not applied when it caught up.
 */
import type { VersionLog } from "../runs/versions.js";
import type { EntryBody } from "./entries.js";
import { etcdFailure } from "./errors.js";
import type { Leadership } from "./leadership.js";

/** A log entry to be placed past the cluster frontier (`minFromStep`: the first step it may affect). */
export interface Proposal {
  readonly make: (minFromStep: number) => { fromStep: number; body: EntryBody };
}

export class EtcdCommitLog implements VersionLog<Proposal> {
  private next: number;

  constructor(
    private readonly lead: Leadership,
    firstSeq: number,
  ) {
    this.next = firstSeq;
  }

  /** The sequence number the next record is written at. */
  get nextSeq(): number {
    return this.next;
  }

  /** Append each proposal in order; a failed one (and those after it) is not written, and `nextSeq` stays at it. */
  async write(records: readonly Proposal[]): Promise<void> {
    for (const r of records) {
      await this.lead.append(this.next, (min) => r.make(min)).catch((e: unknown) => {
        throw etcdFailure(`run "${this.lead.log.runId}": cannot commit log entry ${this.next}`, e);
      });
      this.next++;
    }
  }
}
