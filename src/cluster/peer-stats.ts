/**
 * What a replica counts about each run it takes part in, and the view of a run that
 * metrics.ts exports at scrape time. In a file of its own because three rooms count into
 * the same record (frontier-reservation.ts, run-leader.ts, signal-outbox.ts) and metrics
 * reads it: none of them should need the node, or each other, for the type.
 */

/** Counters of one run on this replica (metrics.ts exports them; they start at 0 per process). */
export interface PeerCounters {
  /** Frontier reservations: written, refused because a log entry was unapplied, failed (etcd). */
  reservations: number;
  reservationsBehind: number;
  reservationsFailed: number;
  /** Entries this replica committed as leader: weights versions, eval requests alone. */
  committedVersions: number;
  committedEvals: number;
  /** Commits etcd refused because this replica no longer led (the fence). */
  fenced: number;
  elected: number;
  steppedDown: number;
  /** Report slices forwarded to the leader, forwards that failed (kept for the next try), slices received as leader. */
  forwardsSent: number;
  forwardsFailed: number;
  forwardsReceived: number;
}

/** Every counter at 0. */
export function newCounters(): PeerCounters {
  return {
    reservations: 0,
    reservationsBehind: 0,
    reservationsFailed: 0,
    committedVersions: 0,
    committedEvals: 0,
    fenced: 0,
    elected: 0,
    steppedDown: 0,
    forwardsSent: 0,
    forwardsFailed: 0,
    forwardsReceived: 0,
  };
}

/** What metrics.ts reads per run at scrape time. */
export interface PeerView {
  readonly runId: string;
  readonly leader: boolean;
  /** Highest log entry applied (0: none). */
  readonly appliedSeq: number;
  /** Id of the latest weights version applied. */
  readonly version: number;
  readonly reservedUpTo: number;
  readonly clusterFrontier: number;
  /** Steps folded into the strategy since this replica became the leader (0 on a follower). */
  readonly foldedSteps: number;
  /** A decision is being made or committed right now (leader). */
  readonly committing: boolean;
  readonly counters: Readonly<PeerCounters>;
}

/**
 * Totals over every run of the replica (tests and docs read them): versions and eval-only
 * entries committed as leader, lookups answered from the catalog, leaderships won and
 * ended, slices forwarded and failed.
 */
export interface NodeStats {
  committed: number;
  evalRequests: number;
  lookupsAnswered: number;
  elected: number;
  steppedDown: number;
  forwardsSent: number;
  forwardsFailed: number;
}
