/**
 * Leading one run: campaign for its leadership, and while leading, fold the signals every
 * replica forwards through the strategy (decider.ts) and commit what it decides with the
 * fenced append (leadership.ts).
 *
 * Why the catch-up before deciding: a new leader's decider starts from the strategy state
 * of the last entry it applied, and a version's id is the next after the run's. Deciding
 * before every committed entry is applied would propose an id that exists (LOG_AHEAD) or
 * from a stale state, so a leader that cannot catch up resigns and campaigns again.
 * One decision is committed at a time, through the term's EtcdCommitLog (the run's
 * VersionLog in etcd); an etcd that cannot be reached has the same decision retried, a
 * refusal (fenced, or the log is ahead) ends the leadership.
 */
import type { Logger } from "../util/log.js";
import type { ClusterRun } from "./cluster-run.js";
import { Decider } from "./decider.js";
import { isClusterError } from "./errors.js";
import { EtcdCommitLog } from "./etcd-commit-log.js";
import type { EtcdVersionLog } from "./etcd-version-log.js";
import { Leadership } from "./leadership.js";
import type { NodeStats, PeerCounters } from "./peer-stats.js";
import type { SignalsEvent } from "../history/events.js";

/** Pause between a leadership (or candidacy) ending and the next campaign (ms). */
const RECAMPAIGN_MS = 200;
/** How long a new leader waits for its follower to apply the log's end (ms). */
const CATCH_UP_MS = 10_000;
/** How long a committed entry may take to come back through the watch (ms). */
const APPLY_MS = 10_000;
/** Pause before retrying a commit etcd did not answer (ms). */
const RETRY_MS = 100;

export interface LeaderDeps {
  readonly run: ClusterRun;
  readonly log: EtcdVersionLog;
  readonly nodeId: string;
  readonly ttlSeconds: number;
  readonly counters: PeerCounters;
  readonly stats: NodeStats;
  readonly logger: Logger;
  /** Where other replicas forward signals to this one (the election value). */
  forwardAddress(): string;
  /** Campaign again while this holds (the node runs, the run is open, the peer is current). */
  active(): boolean;
  /** The node is stopping: no pause before the loop ends. */
  stopped(): boolean;
  /** The first log entry this replica has not applied. */
  nextSeq(): number;
  /** Resolves once every entry below `seq` is applied (or `ms` passed). */
  waitApplied(seq: number, ms: number): Promise<void>;
  /** Strategy state and committed-at step of the last entry applied. */
  lastApplied(): { readonly state: unknown; readonly committedAt: number };
}

export class RunLeader {
  private lead: Leadership | null = null;
  private decider: Decider | null = null;
  /** This term's commit log (null while not leading). */
  private commits: EtcdCommitLog | null = null;
  /** A decision is being made or committed right now. */
  deciding = false;

  constructor(private readonly deps: LeaderDeps) {}

  /** Leading now (elected and caught up)? */
  get leading(): boolean {
    return this.decider != null;
  }

  /** Steps folded since this leadership began (0 while following). */
  get folded(): number {
    return this.decider?.folded ?? 0;
  }

  /** Take slices for the decider; false if this replica does not lead. */
  take(slices: readonly SignalsEvent[], now: number): boolean {
    if (!this.decider) return false;
    this.decider.add(slices, now);
    return true;
  }

  /** Campaign, lead, step down, campaign again, for as long as `active()`. */
  async loop(): Promise<void> {
    const d = this.deps;
    while (d.active()) {
      const lead = new Leadership(d.log, { nodeId: d.nodeId, address: d.forwardAddress() }, { ttlSeconds: d.ttlSeconds });
      this.lead = lead;
      const won = await Promise.race([lead.elected.then(() => true, () => false), lead.ended.then(() => false)]);
      if (won) {
        try {
          // Catch up to the end of the log before deciding anything.
          const { entries } = await d.log.scan(d.nextSeq());
          const end = entries.length > 0 ? entries[entries.length - 1]!.seq + 1 : d.nextSeq();
          await d.waitApplied(end, CATCH_UP_MS);
          if (d.nextSeq() >= end && lead.isLeader) {
            this.commits = new EtcdCommitLog(lead, d.nextSeq());
            const last = d.lastApplied();
            this.decider = new Decider(d.run, d.run.decider, last.state, last.committedAt);
            d.stats.elected++;
            d.counters.elected++;
            d.logger.info("cluster: leading run", { run: d.run.id, node: d.nodeId, nextSeq: this.commits.nextSeq });
          }
        } catch (e) {
          d.logger.warn("cluster: catching up as leader failed", { run: d.run.id, error: String(e) });
        }
        if (!this.decider) await lead.resign().catch(() => undefined);
        const why = await lead.ended;
        if (this.decider) {
          d.stats.steppedDown++;
          d.counters.steppedDown++;
        }
        this.decider = null;
        this.commits = null;
        d.logger.info("cluster: stepped down", { run: d.run.id, reason: why.message });
      }
      this.lead = null;
      if (!d.stopped()) await new Promise((r) => setTimeout(r, RECAMPAIGN_MS));
    }
  }

  /** Called every tick: start deciding if leading and no decision is in flight. */
  tick(now: number): void {
    if (this.decider && !this.deciding) {
      this.deciding = true;
      this.decide(now).finally(() => (this.deciding = false));
    }
  }

  /** Stop deciding and give the leadership (or candidacy) back. */
  async drop(): Promise<void> {
    this.decider = null;
    await this.lead?.resign().catch(() => undefined);
  }

  private async decide(now: number): Promise<void> {
    const d = this.deps;
    const decider = this.decider!;
    const lead = this.lead!;
    const commits = this.commits!;
    let decision;
    try {
      decision = decider.next(now);
    } catch (e) {
      d.logger.error("strategy update failed", { run: d.run.id, error: String(e) });
      return;
    }
    if (!decision) return;
    const seq = commits.nextSeq;
    for (;;) {
      if (this.decider !== decider || !lead.isLeader) return;
      try {
        await commits.write([decision]);
        if (decision.hasWeights) {
          d.stats.committed++;
          d.counters.committedVersions++;
        } else {
          d.stats.evalRequests++;
          d.counters.committedEvals++;
        }
        await d.waitApplied(seq + 1, APPLY_MS);
        return;
      } catch (e) {
        if (isClusterError(e, "FENCED") || isClusterError(e, "LOG_AHEAD")) {
          if (e.clusterCode === "FENCED") d.counters.fenced++;
          d.logger.warn("cluster: commit refused, stepping down", { run: d.run.id, seq, error: (e as Error).message });
          await lead.resign().catch(() => undefined);
          return;
        }
        // etcd unreachable, or the frontier raced away (CONTENTION): the same decision is
        // retried (a commit whose reply was lost shows up as LOG_AHEAD and ends this leadership).
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }
}
