/**
 * Leading a run: an etcd election with a lease, and the fenced append.
 *
 * The fence is the commit transaction itself: entry n is written only if this candidate's
 * campaign key still exists with the create revision it was elected with, AND entry n does
 * not exist, AND the frontier is what the leader read. A deposed leader (lease expired,
 * partitioned, resigned) cannot commit: its key is gone, so etcd refuses, whatever the
 * leader believes. Stepping down locally is the second line, for liveness: a leader that
 * has not confirmed its key for 2/3 of the lease TTL stops deciding (before etcd can expire
 * its key and elect another), and the campaign's error event (lease lost) ends leadership
 * at once.
 */
import { Election, type Campaign } from "etcd3";
import { ClusterError } from "./errors.js";
import { BEHIND, encodeEntry, type EtcdVersionLog, type LogEntry } from "./etcd-version-log.js";

/** What a candidate announces (the election value): how other replicas reach it. */
export interface Announcement {
  readonly nodeId: string;
  /** gRPC address of the leader's replica (signals are forwarded there). */
  readonly address: string;
}

export interface CampaignOptions {
  /** Lease TTL in seconds (etcd's minimum is 1). Failover takes about this long. */
  readonly ttlSeconds: number;
}

const MAX_CONTENTION_RETRIES = 64;

export class Leadership {
  readonly log: EtcdVersionLog;
  readonly announcement: Announcement;
  private readonly campaign: Campaign;
  private readonly ttlMs: number;
  private campaignKey: string | null = null;
  private createRevision: string | null = null;
  private state: "candidate" | "leader" | "ended" = "candidate";
  private lastConfirmed = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private resolveLost!: (e: Error) => void;
  /** Commits etcd refused because the campaign key was gone (the fence at work). */
  fencedByEtcd = 0;
  /** Commits retried because the frontier moved between reading it and committing. */
  frontierRetries = 0;
  /** Resolves once elected (and the key's revision is known); rejects if the campaign fails first. */
  readonly elected: Promise<void>;
  /** Resolves with the reason when leadership (or candidacy) ends; never rejects. */
  readonly ended: Promise<Error>;

  /** Start campaigning for the run's leadership. */
  constructor(log: EtcdVersionLog, announcement: Announcement, opts: CampaignOptions) {
    this.log = log;
    this.announcement = announcement;
    this.ttlMs = opts.ttlSeconds * 1000;
    this.ended = new Promise<Error>((r) => (this.resolveLost = r));
    const election = new Election(log.client.namespace(log.keys.base), "election", opts.ttlSeconds);
    this.campaign = election.campaign(JSON.stringify(announcement));
    this.elected = new Promise<void>((resolve, reject) => {
      this.campaign.on("elected", () => {
        this.onElected().then(resolve, (e: Error) => {
          this.end(e);
          reject(e);
        });
      });
      this.campaign.on("error", (e: Error) => {
        // Lease lost or the campaign failed: stop deciding now.
        this.end(new ClusterError("FENCED", `run "${log.runId}": campaign failed: ${e.message}`));
        reject(e);
      });
    });
    // The campaign may fail before anyone awaits `elected`.
    this.elected.catch(() => undefined);
  }

  /** The campaign key in etcd once elected (null before). */
  get key(): string | null {
    return this.campaignKey;
  }

  get isLeader(): boolean {
    return this.state === "leader";
  }

  private async onElected(): Promise<void> {
    const key = await this.campaign.getCampaignKey();
    const res = await this.log.client.get(key).exec();
    const kv = res.kvs[0];
    if (!kv) throw new ClusterError("FENCED", `run "${this.log.runId}": elected, but the campaign key ${key} is already gone`);
    if (this.state === "ended") throw new ClusterError("FENCED", `run "${this.log.runId}": campaign ended while being elected`);
    this.campaignKey = key;
    this.createRevision = kv.create_revision;
    this.state = "leader";
    this.lastConfirmed = Date.now();
    this.armWatchdog();
  }

  /**
   * Every TTL/3, confirm the campaign key. Two thirds of a TTL without confirmation is a
   * step-down: etcd expires the lease one TTL after the last keepalive, so a cut-off leader
   * stops deciding before another replica can be elected.
   */
  private armWatchdog(): void {
    const every = Math.max(100, Math.floor(this.ttlMs / 3));
    this.watchdog = setInterval(() => {
      if (this.state !== "leader") return;
      if (Date.now() - this.lastConfirmed > (this.ttlMs * 2) / 3) {
        this.end(new ClusterError("FENCED", `run "${this.log.runId}": no contact with etcd for 2/3 of the lease TTL (${this.ttlMs} ms); stepped down`));
        return;
      }
      const asked = Date.now();
      this.log.client
        .get(this.campaignKey!)
        .options({ deadline: asked + every })
        .exec()
        .then((r) => {
          const kv = r.kvs[0];
          if (!kv || kv.create_revision !== this.createRevision) {
            this.end(new ClusterError("FENCED", `run "${this.log.runId}": campaign key gone (lease expired); stepped down`));
          } else if (asked > this.lastConfirmed) {
            this.lastConfirmed = asked;
          }
        })
        // Unreachable etcd: the TTL check above decides when that becomes a step-down.
        .catch(() => undefined);
    }, every);
    this.watchdog.unref();
  }

  /**
   * Commit entry `seq` (the next after every entry this replica has applied). `build`
   * gets the smallest from_step allowed (past the cluster's frontier) and returns the
   * entry; it may be called more than once (when the frontier moves), so it must be pure.
   * Throws FENCED if this replica does not lead, LOG_AHEAD if entry `seq` exists,
   * CONTENTION if the frontier kept moving, etcd's error if etcd did not answer.
   */
  async append(seq: number, build: (minFromStep: number) => { fromStep: number; body: unknown }): Promise<LogEntry> {
    const keys = this.log.keys;
    for (let attempt = 0; attempt < MAX_CONTENTION_RETRIES; attempt++) {
      if (this.state !== "leader") throw new ClusterError("FENCED", `run "${this.log.runId}": not the leader`);
      const f = await this.log.frontier();
      const { fromStep, body } = build(f.step + 1);
      if (!Number.isSafeInteger(fromStep) || fromStep <= f.step) {
        throw new ClusterError("BAD_ENTRY", `run "${this.log.runId}": entry ${seq} from_step ${fromStep} is not past the frontier ${f.step}`);
      }
      const entry: LogEntry = { seq, fromStep, body, at: Date.now() };
      const res = await this.log.client
        .if(this.campaignKey!, "Create", "==", this.createRevision!)
        .and(keys.entry(seq), "Create", "==", 0)
        .and(keys.frontier, "Mod", "==", f.modRevision)
        .then(this.log.client.put(keys.entry(seq)).value(encodeEntry(entry)))
        .else(this.log.client.get(this.campaignKey!), this.log.client.get(keys.entry(seq)))
        .commit();
      if (res.succeeded) {
        this.lastConfirmed = Math.max(this.lastConfirmed, Date.now());
        return entry;
      }
      const mine = res.responses[0]?.response_range?.kvs ?? [];
      if (mine.length === 0 || mine[0]!.create_revision !== this.createRevision) {
        this.fencedByEtcd++;
        this.end(new ClusterError("FENCED", `run "${this.log.runId}": commit of entry ${seq} refused: this replica no longer leads`));
        throw new ClusterError("FENCED", `run "${this.log.runId}": commit of entry ${seq} refused: this replica no longer leads`);
      }
      if ((res.responses[1]?.response_range?.kvs ?? []).length > 0) {
        throw new ClusterError("LOG_AHEAD", `run "${this.log.runId}": log entry ${seq} exists already; catch up before deciding`);
      }
      // Only the frontier moved (a replica reserved more steps): decide from_step again.
      this.frontierRetries++;
    }
    throw new ClusterError("CONTENTION", `run "${this.log.runId}": commit of entry ${seq} lost ${MAX_CONTENTION_RETRIES} frontier races in a row`);
  }

  /** Reserve serving up to `upTo` as the leader does it too (see EtcdVersionLog.reserve). */
  reserve(upTo: number, nextSeq: number): Promise<true | typeof BEHIND> {
    return this.log.reserve(upTo, nextSeq);
  }

  private end(reason: Error): void {
    if (this.state === "ended") return;
    this.state = "ended";
    if (this.watchdog) clearInterval(this.watchdog);
    this.resolveLost(reason);
    // Give the key back so another replica need not wait out the lease; unreachable etcd
    // expires it instead.
    this.campaign.resign().catch(() => undefined);
  }

  /** Stop leading (or campaigning) and delete the campaign key so another replica leads now. */
  async resign(): Promise<void> {
    if (this.state !== "ended") {
      this.state = "ended";
      if (this.watchdog) clearInterval(this.watchdog);
      this.resolveLost(new ClusterError("FENCED", `run "${this.log.runId}": resigned`));
    }
    await this.campaign.resign();
  }
}

/** The current leader's announcement for a run (null: none). */
export async function currentLeader(log: EtcdVersionLog): Promise<Announcement | null> {
  const election = new Election(log.client.namespace(log.keys.base), "election");
  const v = await election.leader();
  return v ? (JSON.parse(v) as Announcement) : null;
}
