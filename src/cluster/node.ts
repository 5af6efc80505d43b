/**
 * One mixflow replica in a cluster: connects the local run registry to etcd.
 *
 * Per run it (1) follows the run's etcd log and applies every committed version to the
 * local `ClusterRun`, in order; (2) reserves steps in etcd before serving them, a chunk
 * ahead so serving rarely waits; (3) campaigns for the run's leadership and, while leading,
 * folds forwarded signals through the strategy (Decider) and commits versions with the
 * fenced append; (4) forwards this replica's acknowledged reports to the leader.
 * Runs are created and closed through the etcd catalog, so every replica serves every run.
 */
import type { Etcd3, Watcher } from "etcd3";
import type { AnyStrategy } from "../../strategies/types.js";
import type { RunConfig } from "../config/schema.js";
import { MixflowError } from "../errors.js";
import type { LoadedDomain } from "../runs/domains.js";
import { EventType, type RunEvent, type SignalsEvent } from "../history/events.js";
import type { RunHooks, RunRegistry } from "../runs/registry.js";
import type { Run, RunDeps, RunObserver } from "../runs/run.js";
import type { Logger } from "../util/log.js";
import { ClusterRun, type ClusterPeer } from "./cluster-run.js";
import { Decider } from "./decider.js";
import { evalStepOf, isEvalEntry, type EntryBody } from "./entries.js";
import { connectEtcd, parseClusterAddress, type ClusterAddress, type EtcdSecurity } from "./etcd-client.js";
import { isClusterError } from "./errors.js";
import { BEHIND, EtcdVersionLog, type Follower, type LogEntry } from "./etcd-version-log.js";
import { ForwardSender, readForwardTls, startForwardServer, type ForwardRequest, type ForwardTls } from "./forward.js";
import { Leadership, currentLeader } from "./leadership.js";
import { RunCatalog } from "./run-catalog.js";

export interface ClusterSettings {
  /** etcd://host:port[,host:port…][/prefix] */
  readonly url: string;
  /** This replica's id (unique in the cluster). */
  readonly nodeId: string;
  /** Where the internal forward service listens (host:port; port 0 picks one). */
  readonly forwardListen: string;
  /** Leadership lease TTL in seconds: a dead leader is replaced after about this long. */
  readonly ttlSeconds: number;
  /** Steps reserved per etcd write: a version takes effect up to this many steps later. */
  readonly reserveChunk: number;
  /** TLS files (with etcds://) and password auth for etcd. */
  readonly security?: EtcdSecurity;
  /** Mutual TLS for the forward service between replicas (off: plaintext, private network only). */
  readonly forwardTls?: ForwardTls;
}

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

interface Peer {
  readonly run: ClusterRun;
  readonly counters: PeerCounters;
  readonly log: EtcdVersionLog;
  follower: Follower | null;
  ready: Promise<void>;
  reservedUpTo: number;
  clusterFrontier: number;
  reserving: Promise<void> | null;
  readonly applied: Set<() => void>;
  lastState: unknown;
  lastCommittedAt: number;
  lead: Leadership | null;
  decider: Decider | null;
  nextSeq: number;
  deciding: boolean;
  leaderAddress: string | null;
  outbox: SignalsEvent[];
}

const TICK_MS = 20;
const OUTBOX_CAP = 16_384;

export class ClusterNode implements ClusterPeer {
  readonly settings: ClusterSettings;
  readonly addr: ClusterAddress;
  readonly etcd: Etcd3;
  readonly catalog: RunCatalog;
  /** Where other replicas forward signals to this one (the election value). */
  forwardAddress = "";
  /** Versions (and eval-only entries) this replica committed as leader, leaderships it won (tests, docs). */
  readonly stats = { committed: 0, evalRequests: 0, lookupsAnswered: 0, elected: 0, steppedDown: 0, forwardsSent: 0, forwardsFailed: 0 };
  private readonly logger: Logger;
  private readonly peers = new Map<string, Peer>();
  /** Runs this replica is creating right now: its own catalog watch must not create them twice. */
  private readonly creatingIds = new Set<string>();
  private readonly sender: ForwardSender;
  private readonly forwardPem: ReturnType<typeof readForwardTls> | null;
  private stopForward: (() => Promise<void>) | null = null;
  private catalogWatch: Watcher | null = null;
  private registry: RunRegistry | null = null;
  /** Per run id, the adoption in progress (watch and lookup must not create a run twice). */
  private readonly adopting = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly startedAt = Date.now();
  /**
   * Called for each entry the watch delivers that was committed after this replica started,
   * with the time from the leader's commit to its apply here (ms; clocks of different hosts
   * differ by their skew). metrics.ts sets it.
   */
  onEntryApplied: ((runId: string, lagMs: number) => void) | null = null;

  private constructor(settings: ClusterSettings, logger: Logger) {
    this.settings = settings;
    this.logger = logger;
    this.addr = parseClusterAddress(settings.url);
    this.forwardPem = settings.forwardTls ? readForwardTls(settings.forwardTls) : null;
    this.sender = new ForwardSender(this.forwardPem);
    this.etcd = connectEtcd(this.addr, settings.security ? { security: settings.security } : {});
    this.catalog = new RunCatalog(this.etcd, this.addr.prefix);
  }

  /** Connect to etcd (checked with one read) and start the forward service. */
  static async start(settings: ClusterSettings, logger: Logger): Promise<ClusterNode> {
    const node = new ClusterNode(settings, logger);
    try {
      await node.etcd.get(`${node.addr.prefix}ping`).exec();
    } catch (e) {
      node.etcd.close();
      throw new Error(`--cluster ${settings.url}: cannot reach etcd: ${(e as Error).message}`);
    }
    const fwd = await startForwardServer(settings.forwardListen, (r) => node.onForward(r), node.forwardPem);
    node.forwardAddress = fwd.address;
    node.stopForward = fwd.stop;
    node.timer = setInterval(() => node.tick(), TICK_MS);
    node.timer.unref();
    return node;
  }

  /** The registry's extension points (see RunHooks). */
  hooks(): RunHooks {
    return {
      makeRun: (cfg: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps): Run =>
        new ClusterRun(cfg, domains, strategy, params, { ...deps, observer: this.forwarding(deps.observer) }, this),
      creating: async (run: Run, events: readonly RunEvent[]) => {
        const initial: LogEntry[] = events
          .flatMap((e) => (e.type === EventType.Version ? [e.body] : []))
          .map((v) => ({ seq: v.version, fromStep: v.fromStep, body: v }));
        this.creatingIds.add(run.id);
        try {
          await this.catalog.create(run.id, JSON.stringify(run.config), initial);
        } finally {
          // The registry adds the run right after this resolves, before any I/O callback.
          queueMicrotask(() => this.creatingIds.delete(run.id));
        }
        if (run instanceof ClusterRun) this.peerOf(run);
      },
      closing: async (run: Run) => {
        await this.catalog.close(run.id);
      },
      lookup: (id: string) => this.lookup(id),
    };
  }

  /**
   * A request for a run this replica does not hold: it may have been created on another
   * replica a moment ago, before this replica's catalog watch delivered it. Read the catalog
   * (one etcd transaction) and adopt the run, so the request is answered instead of getting
   * NOT_FOUND. An unknown run costs one read; unreachable etcd leaves it NOT_FOUND.
   */
  private async lookup(id: string): Promise<void> {
    const registry = this.registry;
    if (!registry || this.stopped || !/^[A-Za-z0-9._-]{1,128}$/.test(id)) return;
    const inFlight = this.adopting.get(id);
    if (inFlight) {
      // The watch delivered it already; its data is being prepared.
      await inFlight.catch(() => undefined);
      if (registry.has(id)) this.stats.lookupsAnswered++;
      return;
    }
    let found;
    try {
      found = await this.catalog.get(id);
    } catch (e) {
      this.logger.warn("cluster: catalog lookup failed", { run: id, error: (e as Error).message });
      return;
    }
    if (!found || registry.has(id)) return;
    await this.adopt(found.id, found.configJson, found.closed);
    if (registry.has(id)) this.stats.lookupsAnswered++;
  }

  /** Create a catalog run locally (once, however many watch events and lookups ask), close it if closed, follow it. */
  private adopt(id: string, configJson: string, closed: boolean): Promise<void> {
    const registry = this.registry!;
    const prev = this.adopting.get(id) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        if (this.stopped || this.creatingIds.has(id)) return;
        if (!registry.has(id)) await registry.create(JSON.parse(configJson));
        const run = registry.get(id);
        if (closed && run.state === "open") await registry.close(id);
        if (run.state === "open" && run instanceof ClusterRun) this.peerOf(run);
      });
    this.adopting.set(id, next);
    void next.then(
      () => this.adopting.get(id) === next && this.adopting.delete(id),
      () => this.adopting.get(id) === next && this.adopting.delete(id),
    );
    return next;
  }

  /** Bring every catalog run into the registry, start following them, and watch for more. */
  async attach(registry: RunRegistry): Promise<void> {
    this.registry = registry;
    const { runs, revision } = await this.catalog.list();
    const adopt = (id: string, configJson: string, closed: boolean): Promise<void> => this.adopt(id, configJson, closed);
    for (const r of runs) await adopt(r.id, r.configJson, r.closed);
    for (const run of registry.list()) if (run instanceof ClusterRun && run.state === "open") this.peerOf(run);
    this.catalogWatch = await this.catalog.watch(
      revision,
      (r) => adopt(r.id, r.configJson, false),
      async (id) => {
        if (registry.has(id) && registry.get(id).state === "open") await registry.close(id);
        await this.dropPeer(id);
      },
      (e) => this.logger.error("cluster catalog", { error: e.message }),
    );
  }

  /** The peer of a run, started on first use. */
  private peerOf(run: ClusterRun): Peer {
    let p = this.peers.get(run.id);
    if (p) return p;
    const peer: Peer = {
      run,
      counters: {
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
      },
      log: new EtcdVersionLog(this.etcd, this.addr.prefix, run.id),
      follower: null,
      ready: Promise.resolve(),
      reservedUpTo: -1,
      clusterFrontier: -1,
      reserving: null,
      applied: new Set(),
      lastState: null,
      lastCommittedAt: -1,
      lead: null,
      decider: null,
      nextSeq: 1,
      deciding: false,
      leaderAddress: null,
      outbox: [],
    };
    p = peer;
    this.peers.set(run.id, peer);
    peer.ready = (async () => {
      // Strategy state of the last version: from the log (entries 1.. carry it).
      peer.follower = await peer.log.follow(
        1,
        (e, live) => this.applyEntry(peer, e, live),
        (err) => this.logger.error("cluster log", { run: run.id, error: err.message }),
      );
      void this.leadLoop(peer);
    })();
    peer.ready.catch((e: unknown) => this.logger.error("cluster follow failed", { run: run.id, error: String(e) }));
    return peer;
  }

  private applyEntry(peer: Peer, e: LogEntry, live: boolean): void {
    const b = e.body as EntryBody;
    if (!isEvalEntry(b)) peer.run.applyCommitted(b);
    const evalStep = evalStepOf(b);
    if (evalStep !== null) peer.run.applyEval(evalStep);
    peer.lastState = b.strategyState;
    peer.lastCommittedAt = b.committedAtStep;
    if (live && e.at !== undefined && e.at >= this.startedAt) this.onEntryApplied?.(peer.run.id, Math.max(0, Date.now() - e.at));
    for (const w of [...peer.applied]) w();
  }

  /** Resolves once the follower has applied every entry below `seq` (or `ms` passed). */
  private waitApplied(peer: Peer, seq: number, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if ((peer.follower?.nextSeq ?? 0) >= seq) done();
      };
      const done = (): void => {
        clearTimeout(t);
        peer.applied.delete(check);
        resolve();
      };
      const t = setTimeout(done, ms);
      peer.applied.add(check);
      check();
    });
  }

  // -------------------------------------------------------------------------------------
  // Serving: the frontier rule (etcd-version-log.ts)

  async admit(run: ClusterRun, step: number): Promise<void> {
    const p = this.peerOf(run);
    await p.ready;
    if (step > p.reservedUpTo - this.settings.reserveChunk / 2 && !p.reserving) this.startReserving(p, step);
    while (step > p.reservedUpTo) {
      if (!p.reserving) this.startReserving(p, step);
      await p.reserving;
    }
  }

  private startReserving(p: Peer, step: number): void {
    p.reserving = this.reserve(p, step).finally(() => (p.reserving = null));
    p.reserving.catch(() => undefined);
  }

  private async reserve(p: Peer, step: number): Promise<void> {
    const upTo = Math.max(step, p.reservedUpTo) + this.settings.reserveChunk;
    for (;;) {
      const next = p.follower!.nextSeq;
      let r: true | typeof BEHIND;
      try {
        r = await p.log.reserve(upTo, next);
      } catch (e) {
        p.counters.reservationsFailed++;
        throw new MixflowError("UNAVAILABLE", `run "${p.run.id}": cannot reserve steps in etcd (${(e as Error).message}); retry or use another replica`);
      }
      if (r === true) {
        p.counters.reservations++;
        p.reservedUpTo = Math.max(p.reservedUpTo, upTo);
        p.clusterFrontier = Math.max(p.clusterFrontier, upTo);
        return;
      }
      p.counters.reservationsBehind++;
      await this.waitApplied(p, next + 1, 5000);
    }
  }

  servedFrontier(run: ClusterRun): number {
    return this.peers.get(run.id)?.clusterFrontier ?? -1;
  }

  async refreshFrontier(run: ClusterRun): Promise<number> {
    const p = this.peerOf(run);
    const f = await p.log.frontier();
    p.clusterFrontier = Math.max(p.clusterFrontier, f.step);
    return p.clusterFrontier;
  }

  // -------------------------------------------------------------------------------------
  // Leading

  private async leadLoop(p: Peer): Promise<void> {
    while (!this.stopped && p.run.state === "open" && this.peers.get(p.run.id) === p) {
      const lead = new Leadership(p.log, { nodeId: this.settings.nodeId, address: this.forwardAddress }, { ttlSeconds: this.settings.ttlSeconds });
      p.lead = lead;
      const won = await Promise.race([lead.elected.then(() => true, () => false), lead.ended.then(() => false)]);
      if (won) {
        try {
          // Catch up to the end of the log before deciding anything.
          const { entries } = await p.log.scan(p.follower!.nextSeq);
          const end = entries.length > 0 ? entries[entries.length - 1]!.seq + 1 : p.follower!.nextSeq;
          await this.waitApplied(p, end, 10_000);
          if (p.follower!.nextSeq >= end && lead.isLeader) {
            p.nextSeq = p.follower!.nextSeq;
            p.decider = new Decider(p.run, p.run.decider, p.lastState, p.lastCommittedAt);
            this.stats.elected++;
            p.counters.elected++;
            this.logger.info("cluster: leading run", { run: p.run.id, node: this.settings.nodeId, nextSeq: p.nextSeq });
          }
        } catch (e) {
          this.logger.warn("cluster: catching up as leader failed", { run: p.run.id, error: String(e) });
        }
        if (!p.decider) await lead.resign().catch(() => undefined);
        const why = await lead.ended;
        if (p.decider) {
          this.stats.steppedDown++;
          p.counters.steppedDown++;
        }
        p.decider = null;
        this.logger.info("cluster: stepped down", { run: p.run.id, reason: why.message });
      }
      p.lead = null;
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      this.flush(p);
      if (p.decider && !p.deciding) {
        p.deciding = true;
        this.decide(p, now).finally(() => (p.deciding = false));
      }
    }
  }

  private async decide(p: Peer, now: number): Promise<void> {
    const d = p.decider!;
    const lead = p.lead!;
    let decision;
    try {
      decision = d.next(now);
    } catch (e) {
      this.logger.error("strategy update failed", { run: p.run.id, error: String(e) });
      return;
    }
    if (!decision) return;
    const seq = p.nextSeq;
    for (;;) {
      if (p.decider !== d || !lead.isLeader) return;
      try {
        await lead.append(seq, (min) => decision.make(min));
        p.nextSeq = seq + 1;
        if (decision.hasWeights) {
          this.stats.committed++;
          p.counters.committedVersions++;
        } else {
          this.stats.evalRequests++;
          p.counters.committedEvals++;
        }
        await this.waitApplied(p, seq + 1, 10_000);
        return;
      } catch (e) {
        if (isClusterError(e)) {
          if (e.code === "FENCED") p.counters.fenced++;
          this.logger.warn("cluster: commit refused, stepping down", { run: p.run.id, seq, error: (e as Error).message });
          await lead.resign().catch(() => undefined);
          return;
        }
        // etcd unreachable: the same decision is retried (a commit whose reply was lost
        // shows up as LOG_AHEAD and ends this leadership).
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Signals: acknowledged locally, forwarded to the leader

  private forwarding(inner: RunObserver | undefined): RunObserver {
    const o: RunObserver = {
      served: (run, slice, s, where) => inner?.served?.(run, slice, s, where),
      signal: (run, e) => {
        inner?.signal?.(run, e);
        const p = this.peers.get(run.id);
        if (!p) return;
        p.outbox.push(e);
        if (p.outbox.length > OUTBOX_CAP) p.outbox.splice(0, p.outbox.length - OUTBOX_CAP);
      },
      rejected: (run, reason) => inner?.rejected?.(run, reason),
      aggregated: (run, step, loss, evalLoss) => inner?.aggregated?.(run, step, loss, evalLoss),
      version: (run, v) => inner?.version?.(run, v),
      strategyUpdate: (run, s) => inner?.strategyUpdate?.(run, s),
    };
    return o;
  }

  private flush(p: Peer): void {
    if (p.outbox.length === 0) return;
    if (p.decider) {
      p.decider.add(p.outbox.splice(0), Date.now());
      return;
    }
    if (p.leaderAddress === "pending") return;
    const slices = p.outbox.splice(0).sort((a, b) => a.step - b.step || a.offset - b.offset);
    const address = p.leaderAddress;
    p.leaderAddress = "pending";
    void (async () => {
      let to = address;
      try {
        if (!to) to = (await currentLeader(p.log))?.address ?? null;
        if (!to) throw new Error("no leader");
        const ok = await this.sender.send(to, { runId: p.run.id, from: this.settings.nodeId, slices }, 2000);
        if (!ok) throw new Error("not the leader");
        this.stats.forwardsSent += slices.length;
        p.counters.forwardsSent += slices.length;
        p.leaderAddress = to;
      } catch {
        // Keep them for the next leader (bounded by OUTBOX_CAP); look the leader up again.
        this.stats.forwardsFailed += slices.length;
        p.counters.forwardsFailed += slices.length;
        p.outbox.unshift(...slices);
        if (p.outbox.length > OUTBOX_CAP) p.outbox.splice(0, p.outbox.length - OUTBOX_CAP);
        p.leaderAddress = null;
      }
    })();
  }

  private onForward(r: ForwardRequest): boolean {
    const p = this.peers.get(r.runId);
    if (!p?.decider) return false;
    p.decider.add(r.slices, Date.now());
    p.counters.forwardsReceived += r.slices.length;
    return true;
  }

  // -------------------------------------------------------------------------------------

  /** Every run this replica follows, as metrics.ts exports it. */
  views(): PeerView[] {
    return [...this.peers.values()].map((p) => ({
      runId: p.run.id,
      leader: p.decider != null,
      appliedSeq: (p.follower?.nextSeq ?? 1) - 1,
      version: p.run.versions.length,
      reservedUpTo: p.reservedUpTo,
      clusterFrontier: p.clusterFrontier,
      foldedSteps: p.decider?.folded ?? 0,
      committing: p.deciding,
      counters: p.counters,
    }));
  }

  /** Is this replica leading the run now (tests, metrics)? */
  leads(runId: string): boolean {
    return this.peers.get(runId)?.decider != null;
  }

  private async dropPeer(id: string): Promise<void> {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    p.decider = null;
    await p.lead?.resign().catch(() => undefined);
    await p.follower?.close();
  }

  /** Resign every leadership (so others take over at once), stop watches, close etcd. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.catalogWatch?.cancel();
    for (const id of [...this.peers.keys()]) await this.dropPeer(id);
    this.sender.close();
    await this.stopForward?.();
    this.etcd.close();
  }
}
