/**
 * A run's version book: every committed weights version in order, which of them are
 * published, and who is watching. A version is applied (planned with, included in
 * snapshots) as soon as it is committed, but published — shown to GetWeights and
 * WatchWeights, announced to the observer — only once its record is durable in the run's
 * version log, so a client never sees a version a crash could take back.
 *
 * The book does not write anything itself: the `VersionLog` is where a commit becomes
 * durable. In one process that is the run's journal; a shared log (the cluster's etcd log)
 * is another implementation of the same promise.
 */
import type { RunEvent, Version, VersionEvent } from "../history/events.js";

/**
 * Where a run's commits become durable. In one process a record is a journal event (the
 * version record with what was decided alongside it) and the log is the run's journal. A
 * shared log takes records of its own shape, hence the parameter: the cluster's etcd log
 * (src/cluster/etcd-commit-log.ts) takes the leader's proposals, which place themselves
 * past the frontier every replica has served when the fenced append commits them.
 */
export interface VersionLog<R = RunEvent> {
  /** Resolves once the records are durable; rejects if they may not be. */
  write(records: readonly R[]): Promise<void>;
}

/** A version as committed or journaled (the strategy state travels separately). */
export type VersionRecord = Omit<VersionEvent, "strategyState"> & { strategyState?: unknown };

export class VersionBook {
  private readonly list: Version[] = [];
  /** How many of `list` are durable (published). */
  private durableCount = 0;
  private readonly watchers = new Set<(v: Version | null) => void>();

  /**
   * `onApply`: a version was added (the planner plans with it from now on).
   * `onPublish`: a version became durable (before the watchers hear of it).
   */
  constructor(
    private readonly onApply: (v: Version) => void,
    private readonly onPublish: (v: Version) => void,
  ) {}

  /** Every applied version, published or not (snapshots, the planner's view). */
  get all(): readonly Version[] {
    return this.list;
  }

  /** The last applied version. */
  get last(): Version {
    return this.list[this.list.length - 1]!;
  }

  /**
   * Add a version. `durable` is false while its record is being written: it is already in
   * snapshots and gated for serving, but not published until `markDurable`.
   */
  apply(v: VersionRecord, durable = true): void {
    const rv: Version = {
      version: v.version,
      fromStep: v.fromStep,
      weights: v.weights,
      competence: v.competence,
      reason: v.reason,
      committedAtStep: v.committedAtStep,
    };
    this.onApply(rv);
    this.list.push(rv);
    if (durable) this.markDurable();
  }

  /** Versions up to the last applied one are durable: publish them, each once. */
  markDurable(): void {
    while (this.durableCount < this.list.length) {
      const rv = this.list[this.durableCount++]!;
      this.onPublish(rv);
      for (const w of this.watchers) w(rv);
    }
  }

  /** Versions whose record is durable (what GetWeights and WatchWeights show). */
  get published(): readonly Version[] {
    return this.durableCount === this.list.length ? this.list : this.list.slice(0, this.durableCount);
  }

  /** The latest published version. */
  get current(): Version {
    return this.list[Math.max(0, this.durableCount - 1)]!;
  }

  /** Subscribe to published versions; the listener gets null when the run closes. */
  watch(listener: (v: Version | null) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  /** Tell every watcher the run closed. */
  closed(): void {
    for (const w of this.watchers) w(null);
  }

  get watcherCount(): number {
    return this.watchers.size;
  }
}
