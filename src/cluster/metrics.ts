/**
 * Prometheus series of a cluster replica (docs/cluster.md, "Metrics"), on the server's
 * own registry (src/metrics creates it; nothing there knows about clusters).
 *
 * Everything but the watch lag is read from the node at scrape time (ClusterNode.views),
 * so the series cannot drift from what the replica does; counters are per run and start at
 * 0 in every process, and a run's series go away when the replica stops following it.
 * Labels: `run` (bounded by limits.maxRuns) and small fixed sets (`outcome`, `kind`).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ClusterNode } from "./node.js";
import type { PeerCounters, PeerView } from "./peer-stats.js";

/** Watch lag buckets (seconds): from a loopback apply (~1 ms) to a replica far behind. */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A counter whose value is read from the node's per-run counters at scrape time. */
function runCounter(registry: Registry, node: ClusterNode, name: string, help: string, parts: Record<string, keyof PeerCounters> | keyof PeerCounters): void {
  const multi = typeof parts === "object";
  new Counter({
    name,
    help,
    labelNames: multi ? ["run", "outcome"] : ["run"],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of node.views()) {
        if (multi) for (const [outcome, key] of Object.entries(parts)) this.inc({ run: v.runId, outcome }, v.counters[key]);
        else this.inc({ run: v.runId }, v.counters[parts]);
      }
    },
  });
}

/** A gauge per run read from the node's view at scrape time. */
function runGauge(registry: Registry, node: ClusterNode, name: string, help: string, read: (v: PeerView) => number): void {
  new Gauge({
    name,
    help,
    labelNames: ["run"],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of node.views()) this.set({ run: v.runId }, read(v));
    },
  });
}

/** Register the cluster series of `node` on `registry` (call once per registry). */
export function registerClusterMetrics(registry: Registry, node: ClusterNode): void {
  new Gauge({
    name: "mixflow_cluster_info",
    help: "Always 1 on a cluster replica; node is its --node-id.",
    labelNames: ["node"],
    registers: [registry],
  }).set({ node: node.settings.nodeId }, 1);

  runGauge(registry, node, "mixflow_cluster_leader", "1 while this replica leads the run (runs its strategy and commits), 0 while it follows.", (v) => (v.leader ? 1 : 0));
  runGauge(registry, node, "mixflow_cluster_committed_version", "Id of the latest weights version this replica applied from the run's etcd log.", (v) => v.version);
  runGauge(registry, node, "mixflow_cluster_log_applied_seq", "Sequence number of the last etcd log entry (version or eval request) this replica applied.", (v) => v.appliedSeq);
  runGauge(registry, node, "mixflow_cluster_reserved_step", "Highest step this replica reserved in etcd (it may serve up to it without another write; -1: none).", (v) => v.reservedUpTo);
  runGauge(registry, node, "mixflow_cluster_frontier_step", "Highest step any replica reserved, as this replica last read it from etcd (-1: none).", (v) => v.clusterFrontier);

  runCounter(registry, node, "mixflow_cluster_reservations_total", "Frontier reservations in etcd: ok (written), behind (refused: a log entry to apply first), error (etcd unreachable).", {
    ok: "reservations",
    behind: "reservationsBehind",
    error: "reservationsFailed",
  });
  runCounter(registry, node, "mixflow_cluster_commits_total", "Log entries this replica committed as leader, by outcome: version (weights), eval (an eval request alone), fenced (refused: no longer the leader).", {
    version: "committedVersions",
    eval: "committedEvals",
    fenced: "fenced",
  });
  runCounter(registry, node, "mixflow_cluster_forwarded_slices_total", "Report slices forwarded to the run's leader: sent (accepted), failed (kept for the next leader), received (as leader).", {
    sent: "forwardsSent",
    failed: "forwardsFailed",
    received: "forwardsReceived",
  });
  runCounter(registry, node, "mixflow_cluster_elections_total", "Times this replica was elected the run's leader (and caught up on its log).", "elected");
  runCounter(registry, node, "mixflow_cluster_step_downs_total", "Times this replica stopped leading the run (lease lost, fenced, cut off from etcd, or resigned).", "steppedDown");

  const lag = new Histogram({
    name: "mixflow_cluster_watch_lag_seconds",
    help: "Time from the leader's commit of a log entry to its apply on this replica through the etcd watch (across hosts it includes their clock skew).",
    labelNames: ["run"],
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  node.onEntryApplied = (runId, lagMs) => lag.observe({ run: runId }, lagMs / 1000);
}
