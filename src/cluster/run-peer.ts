/**
 * One run as this replica takes part in it. It follows the run's etcd log and applies
 * every committed entry to the local `ClusterRun`, in log order, and composes what a
 * replica does per run besides: reserve steps before serving them
 * (frontier-reservation.ts), campaign and lead (run-leader.ts), forward acknowledged
 * signals (signal-outbox.ts).
 *
 * Why the log is followed from entry 1, every time: the versions after the strategy's init
 * live only in etcd (the local journal has the run's creation and its reports), entries
 * 1..k are checked against the versions this replica's own init computed (a replica whose
 * config or data differ is refused, ClusterRun.applyCommitted), and each entry carries the
 * strategy state a new leader resumes from.
 */
import type { Etcd3 } from "etcd3";
import { MixflowError } from "../errors.js";
import type { Logger } from "../util/log.js";
import type { ClusterRun } from "./cluster-run.js";
import { evalStepOf, isEvalEntry, type EntryBody } from "./entries.js";
import { EtcdVersionLog, type Follower, type LogEntry } from "./etcd-version-log.js";
import type { ForwardSender } from "./forward.js";
import { FrontierReservation } from "./frontier-reservation.js";
import { newCounters, type NodeStats, type PeerCounters, type PeerView } from "./peer-stats.js";
import { RunLeader } from "./run-leader.js";
import { SignalOutbox } from "./signal-outbox.js";

/** What a peer needs from its node (shared by every run of the replica). */
export interface PeerDeps {
  readonly etcd: Etcd3;
  readonly prefix: string;
  readonly nodeId: string;
  readonly ttlSeconds: number;
  readonly reserveChunk: number;
  readonly stats: NodeStats;
  readonly logger: Logger;
  readonly sender: ForwardSender;
  /** Process start (ms since the epoch): entries committed before it count for no watch lag. */
  readonly startedAt: number;
  forwardAddress(): string;
  /** The node is stopping. */
  stopped(): boolean;
  /** This peer is still the node's peer for its run (not dropped). */
  current(peer: RunPeer): boolean;
  /** An entry committed after `startedAt` arrived through the watch, `lagMs` after its commit. */
  onEntryApplied(runId: string, lagMs: number): void;
}

export class RunPeer {
  readonly run: ClusterRun;
  readonly counters: PeerCounters = newCounters();
  readonly log: EtcdVersionLog;
  readonly reservation: FrontierReservation;
  readonly leader: RunLeader;
  readonly outbox: SignalOutbox;
  /** Resolves once the log is being followed (every request of the run waits on it). */
  ready: Promise<void> = Promise.resolve();
  private follower: Follower | null = null;
  private readonly applied = new Set<() => void>();
  private lastState: unknown = null;
  private lastCommittedAt = -1;

  constructor(
    run: ClusterRun,
    private readonly deps: PeerDeps,
  ) {
    this.run = run;
    this.log = new EtcdVersionLog(deps.etcd, deps.prefix, run.id);
    const nextSeq = (): number => this.follower!.nextSeq;
    const waitApplied = (seq: number, ms: number): Promise<void> => this.waitApplied(seq, ms);
    this.reservation = new FrontierReservation({ runId: run.id, log: this.log, reserveChunk: deps.reserveChunk, counters: this.counters, nextSeq, waitApplied });
    this.leader = new RunLeader({
      run,
      log: this.log,
      nodeId: deps.nodeId,
      ttlSeconds: deps.ttlSeconds,
      counters: this.counters,
      stats: deps.stats,
      logger: deps.logger,
      forwardAddress: deps.forwardAddress,
      active: () => !deps.stopped() && run.state === "open" && deps.current(this),
      stopped: deps.stopped,
      nextSeq,
      waitApplied,
      lastApplied: () => ({ state: this.lastState, committedAt: this.lastCommittedAt }),
    });
    this.outbox = new SignalOutbox({ runId: run.id, nodeId: deps.nodeId, log: this.log, sender: deps.sender, counters: this.counters, stats: deps.stats });
  }

  /** Follow the log from entry 1 (strategy state of the last version: entries 1.. carry it), then campaign. */
  start(): void {
    this.ready = (async () => {
      // etcd unreachable at this moment (no quorum, a member restarting) is retried: a
      // failed first read must not leave the run unservable on this replica for its
      // lifetime (every request waits on `ready`).
      for (let wait = 200; ; wait = Math.min(2000, wait * 2)) {
        if (this.deps.stopped() || !this.deps.current(this)) throw new MixflowError("UNAVAILABLE", `run "${this.run.id}": this replica is stopping`);
        try {
          this.follower = await this.log.follow(
            1,
            (e, live) => this.applyEntry(e, live),
            (err) => this.deps.logger.error("cluster log", { run: this.run.id, error: err.message }),
          );
          break;
        } catch (e) {
          this.deps.logger.warn("cluster: following the run's log failed; retrying", { run: this.run.id, error: String(e), retryInMs: wait });
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      void this.leader.loop();
    })();
    this.ready.catch(() => undefined);
  }

  /** Resolves once `step` may be served here (the frontier rule); UNAVAILABLE if it cannot be (etcd, or the replica stops). */
  async admit(step: number): Promise<void> {
    // Rejects only once the replica stops (a failed follow is retried): UNAVAILABLE already.
    await this.ready;
    await this.reservation.admit(step);
  }

  /** Every tick: hand queued signals on, and decide if leading. */
  tick(now: number): void {
    this.outbox.flush(this.leader.leading ? (slices) => this.leader.take(slices, Date.now()) : null);
    this.leader.tick(now);
  }

  view(): PeerView {
    return {
      runId: this.run.id,
      leader: this.leader.leading,
      appliedSeq: (this.follower?.nextSeq ?? 1) - 1,
      version: this.run.versions.length,
      reservedUpTo: this.reservation.reservedUpTo,
      clusterFrontier: this.reservation.clusterFrontier,
      foldedSteps: this.leader.folded,
      committing: this.leader.deciding,
      counters: this.counters,
    };
  }

  /** Stop leading and following (the run was closed, or the node stops). */
  async drop(): Promise<void> {
    await this.leader.drop();
    await this.follower?.close();
  }

  private applyEntry(e: LogEntry, live: boolean): void {
    const b = e.body as EntryBody;
    if (!isEvalEntry(b)) this.run.applyCommitted(b);
    const evalStep = evalStepOf(b);
    if (evalStep !== null) this.run.applyEval(evalStep);
    this.lastState = b.strategyState;
    this.lastCommittedAt = b.committedAtStep;
    if (live && e.at !== undefined && e.at >= this.deps.startedAt) this.deps.onEntryApplied(this.run.id, Math.max(0, Date.now() - e.at));
    for (const w of [...this.applied]) w();
  }

  /** Resolves once the follower has applied every entry below `seq` (or `ms` passed). */
  private waitApplied(seq: number, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if ((this.follower?.nextSeq ?? 0) >= seq) done();
      };
      const done = (): void => {
        clearTimeout(t);
        this.applied.delete(check);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.applied.add(check);
      check();
    });
  }
}
