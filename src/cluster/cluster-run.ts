/**
 * A run as one replica of a cluster serves it: the single-process `Run` (batch assembly,
 * local journal, report intake) with three differences.
 *
 * - Its strategy never decides: `init` is the real one (pure, so every replica computes
 *   the same first versions, which are also entries 1..k of the etcd log), `update` keeps
 *   the weights. Versions and eval steps arrive only from the etcd log (`applyCommitted`,
 *   `applyEval`), decided by the run's leader (decider.ts, entries.ts).
 * - Serving a step first reserves it in etcd (the cluster's frontier rule), through the
 *   `ClusterPeer` the node gives it.
 * - A report for a step another replica served is accepted once the cluster frontier
 *   shows it served; an acknowledged report is handed to the peer for forwarding.
 */
import type { AnyStrategy, Strategy } from "../../strategies/types.js";
import type { RunConfig } from "../config/schema.js";
import { MixflowError } from "../errors.js";
import type { LoadedDomain } from "../runs/domains.js";
import { EventType, type VersionEvent } from "../history/events.js";
import type { ReportInput } from "../runs/report.js";
import { Run, type RunDeps, type ServedBatch } from "../runs/run.js";
import type { SliceGeometry } from "../runs/slice.js";

/** What a cluster run needs from its node. */
export interface ClusterPeer {
  /** Resolves once `step` is inside this replica's reservation (throws UNAVAILABLE if etcd cannot be reached). */
  admit(run: ClusterRun, step: number): Promise<void>;
  /** Highest step any replica has reserved, as last read from etcd (-1: none). */
  servedFrontier(run: ClusterRun): number;
  /** Re-read the cluster frontier from etcd (throws UNAVAILABLE if etcd cannot be reached). */
  refreshFrontier(run: ClusterRun): Promise<number>;
}

/** The strategy with its decisions taken away (see the header). */
export function followerStrategy(s: AnyStrategy): AnyStrategy {
  const f: Strategy<unknown, unknown> = {
    name: s.name,
    summary: s.summary,
    params: s.params,
    init: (ctx, params) => s.init(ctx, params),
    update: (_ctx, _params, state) => ({ state, weights: null }),
  };
  if (s.usesEval !== undefined) Object.assign(f, { usesEval: s.usesEval });
  return f;
}

export class ClusterRun extends Run {
  /** The run's real strategy (the leader's decider runs it). */
  readonly decider: AnyStrategy;
  private readonly peer: ClusterPeer;

  constructor(config: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps, peer: ClusterPeer) {
    super(config, domains, followerStrategy(strategy), params, deps);
    this.decider = strategy;
    this.peer = peer;
  }

  override async serve(s: SliceGeometry): Promise<ServedBatch> {
    await this.peer.admit(this, s.step);
    return super.serve(s);
  }

  override get servedBound(): number {
    return Math.max(super.servedBound, this.peer.servedFrontier(this) + 1);
  }

  override async accept(s: SliceGeometry, input: ReportInput): ReturnType<Run["accept"]> {
    // The cluster's frontier lives in etcd: refreshFrontier throws UNAVAILABLE when etcd is unreachable (retryable).
    if (s.step >= this.servedBound) await this.peer.refreshFrontier(this);
    return super.accept(s, input);
  }

  /** Apply an eval step committed in the etcd log (past every served step: the frontier rule). */
  applyEval(step: number): void {
    this.addEvalStep(step);
  }

  /** Apply a committed version from the etcd log (in log order; earlier ids are ignored). */
  applyCommitted(v: VersionEvent): void {
    const have = this.versions.length;
    if (v.version <= have) {
      const mine = this.versions[v.version - 1]!;
      if (mine.fromStep !== v.fromStep || JSON.stringify(mine.weights) !== JSON.stringify(v.weights)) {
        throw new MixflowError("INTERNAL", `run "${this.id}": version ${v.version} in etcd differs from this replica's (config or data differ between replicas?)`);
      }
      return;
    }
    if (v.version !== have + 1) throw new MixflowError("INTERNAL", `run "${this.id}": version ${v.version} from etcd after ${have} (a gap)`);
    this.replay({ type: EventType.Version, body: v });
  }
}
