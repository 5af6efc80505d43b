/**
 * One mixflow replica in a cluster: connects the local run registry to etcd.
 *
 * Per run a `RunPeer` (run-peer.ts) follows the run's etcd log and applies every committed
 * version to the local `ClusterRun`, reserves steps before serving them, campaigns for
 * the run's leadership and, while leading, commits what the strategy decides, and forwards
 * this replica's acknowledged reports to the leader. The node holds what the runs share:
 * the etcd client, the catalog, the forward service and its sender, one tick for every
 * run. Runs are created and closed through the etcd catalog, so every replica serves
 * every run; this file is where catalog runs become registry runs (adoption).
 */
import type { Etcd3, Watcher } from "etcd3";
import type { AnyStrategy } from "../../strategies/types.js";
import type { RunConfig } from "../config/schema.js";
import type { LoadedDomain } from "../runs/domains.js";
import { EventType, type RunEvent } from "../history/events.js";
import type { RunHooks, RunRegistry } from "../runs/registry.js";
import type { Run, RunDeps } from "../runs/run.js";
import type { Logger } from "../util/log.js";
import { ClusterRun, type ClusterPeer } from "./cluster-run.js";
import { connectEtcd, parseClusterAddress, type ClusterAddress, type EtcdSecurity } from "./etcd-client.js";
import { ClusterError, etcdFailure } from "./errors.js";
import type { LogEntry } from "./etcd-version-log.js";
import { ForwardSender, readForwardTls, startForwardServer, type ForwardRequest, type ForwardTls } from "./forward.js";
import type { NodeStats, PeerView } from "./peer-stats.js";
import { RunCatalog } from "./run-catalog.js";
import { RunPeer } from "./run-peer.js";
import { forwardingObserver } from "./signal-outbox.js";

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

/** How often every run flushes its signals and, on the leader, decides (ms). */
const TICK_MS = 20;

export class ClusterNode implements ClusterPeer {
  readonly settings: ClusterSettings;
  readonly addr: ClusterAddress;
  readonly etcd: Etcd3;
  readonly catalog: RunCatalog;
  /** Where other replicas forward signals to this one (the election value). */
  forwardAddress = "";
  /** Totals over every run (tests, docs). */
  readonly stats: NodeStats = { committed: 0, evalRequests: 0, lookupsAnswered: 0, elected: 0, steppedDown: 0, forwardsSent: 0, forwardsFailed: 0 };
  private readonly logger: Logger;
  private readonly peers = new Map<string, RunPeer>();
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
      throw new ClusterError("ETCD_UNAVAILABLE", `--cluster ${settings.url}: cannot reach etcd: ${(e as Error).message}`, { cause: e });
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
        new ClusterRun(cfg, domains, strategy, params, { ...deps, observer: forwardingObserver(deps.observer, (id) => this.peers.get(id)?.outbox) }, this),
      creating: async (run: Run, events: readonly RunEvent[]) => {
        const initial: LogEntry[] = events
          .flatMap((e) => (e.type === EventType.Version ? [e.body] : []))
          .map((v) => ({ seq: v.version, fromStep: v.fromStep, body: v }));
        this.creatingIds.add(run.id);
        try {
          await this.catalog.create(run.id, JSON.stringify(run.config), initial);
        } catch (e) {
          throw etcdFailure(`run "${run.id}": cannot create it in the cluster's catalog`, e);
        } finally {
          // The registry adds the run right after this resolves, before any I/O callback.
          queueMicrotask(() => this.creatingIds.delete(run.id));
        }
        if (run instanceof ClusterRun) this.peerOf(run);
      },
      closing: async (run: Run) => {
        await this.catalog.close(run.id).catch((e: unknown) => {
          throw etcdFailure(`run "${run.id}": cannot close it in the cluster's catalog`, e);
        });
      },
      lookup: (id: string) => this.lookup(id),
    };
  }

  /**
   * A request for a run this replica does not hold: it may have been created on another
   * replica a moment ago, before this replica's catalog watch delivered it. Read the catalog
   * (one etcd transaction) and adopt the run, so the request is answered instead of getting
   * NOT_FOUND. An unknown run costs one read. Unreachable etcd is UNAVAILABLE, not
   * NOT_FOUND: the run may well exist, and a client retrying (here or on another replica)
   * finds it once etcd answers.
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
      throw etcdFailure(`run "${id}": not on this replica, and the cluster's catalog cannot be read`, e);
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
        if (!registry.has(id)) await registry.create(parseCatalogConfig(id, configJson));
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
  private peerOf(run: ClusterRun): RunPeer {
    const have = this.peers.get(run.id);
    if (have) return have;
    const peer = new RunPeer(run, {
      etcd: this.etcd,
      prefix: this.addr.prefix,
      nodeId: this.settings.nodeId,
      ttlSeconds: this.settings.ttlSeconds,
      reserveChunk: this.settings.reserveChunk,
      stats: this.stats,
      logger: this.logger,
      sender: this.sender,
      startedAt: this.startedAt,
      forwardAddress: () => this.forwardAddress,
      stopped: () => this.stopped,
      current: (p) => this.peers.get(run.id) === p,
      onEntryApplied: (runId, lagMs) => this.onEntryApplied?.(runId, lagMs),
    });
    this.peers.set(run.id, peer);
    peer.start();
    return peer;
  }

  // ClusterPeer: the frontier rule, for ClusterRun (frontier-reservation.ts)

  async admit(run: ClusterRun, step: number): Promise<void> {
    await this.peerOf(run).admit(step);
  }

  servedFrontier(run: ClusterRun): number {
    return this.peers.get(run.id)?.reservation.clusterFrontier ?? -1;
  }

  async refreshFrontier(run: ClusterRun): Promise<number> {
    return this.peerOf(run)
      .reservation.refresh()
      .catch((e: unknown) => {
        throw etcdFailure(`run "${run.id}": cannot read the served frontier`, e);
      });
  }

  private tick(): void {
    const now = Date.now();
    for (const p of this.peers.values()) p.tick(now);
  }

  /** Slices forwarded by another replica: taken only while this replica leads the run. */
  private onForward(r: ForwardRequest): boolean {
    const p = this.peers.get(r.runId);
    if (!p?.leader.take(r.slices, Date.now())) return false;
    p.counters.forwardsReceived += r.slices.length;
    return true;
  }

  /** Every run this replica follows, as metrics.ts exports it. */
  views(): PeerView[] {
    return [...this.peers.values()].map((p) => p.view());
  }

  /** Is this replica leading the run now (tests, metrics)? */
  leads(runId: string): boolean {
    return this.peers.get(runId)?.leader.leading ?? false;
  }

  private async dropPeer(id: string): Promise<void> {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    await p.drop();
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

/** A run's config as the catalog holds it (JSON mixflow wrote); CORRUPT naming the run if it does not parse. */
function parseCatalogConfig(id: string, configJson: string): unknown {
  try {
    return JSON.parse(configJson) as unknown;
  } catch {
    throw new ClusterError("CORRUPT", `run "${id}": its config in the cluster's catalog is not JSON`);
  }
}
