/**
 * Prometheus metrics for one mixflow server (DESIGN.md "Observability").
 *
 * `createMetrics(config.metrics)` returns an observer to hand to `MixflowServer.start`
 * (it implements the run, call, stream and journal hooks), the prom-client `Registry` it
 * fills, and start/stop for the HTTP endpoint that exposes it.
 *
 * Choices that matter to users of the series:
 * - One `Registry` per server, never prom-client's global one: tests (and embedders) run
 *   several servers in one process, and the global registry would mix or reject them.
 * - Labels are bounded: `run` (limits.maxRuns), `domain` (capped per run at
 *   `metrics.maxDomainSeries`, the rest summed as domain="other", see ./buckets.ts),
 *   `method`/`code` (fixed gRPC sets) and `kind` (stream kinds). Nothing is labelled by
 *   request, rank address, step or sample.
 * - Values that already live in the run (frontier, last aggregated step) are read at
 *   scrape time rather than mirrored on every event, so they cannot drift.
 * - Counters start at zero in every process (Prometheus handles resets with rate());
 *   gauges that describe run state (weights, smoothed losses) are rebuilt during recovery
 *   because the run replays its versions and aggregations through the same observer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ServerConfig } from "../config/schema.js";
import type { ServedBatch, JournalObserver, Run, RunObserver } from "../runs/index.js";
import type { SignalsEvent } from "../history/events.js";
import type { Version } from "../history/events.js";
import type { CallObserver } from "../server/wrap.js";
import type { Logger } from "../util/log.js";
import { PACKAGE_ROOT } from "../util/package-root.js";
import { domainBuckets, meanBySeries, sumBySeries, type DomainBuckets } from "./buckets.js";
import { metricsEndpoint } from "./endpoint.js";

export { domainBuckets, OTHER } from "./buckets.js";
export { parseListen } from "./endpoint.js";

export type MetricsConfig = ServerConfig["metrics"];

/** Smoothing factor of the training-loss EMA: each aggregated step moves it 10% of the way. */
export const LOSS_EMA_ALPHA = 0.1;
/** A rank counts as connected while it was seen (report, or batch where known) this recently. */
export const RANK_WINDOW_MS = 60_000;
/** Ranks remembered per run at most (the config caps worldSize at 65 536 anyway). */
const MAX_RANKS_TRACKED = 65_536;

/** Everything the server can tell the metrics: run, call, stream and journal hooks. */
export interface MetricsObserver extends RunObserver, CallObserver, JournalObserver {
  served(run: Run, batch: ServedBatch, assembleSeconds: number, where?: { step: number; rank: number }): void;
  streams(kind: string, run: string, delta: number): void;
}

export interface Metrics {
  readonly observer: MetricsObserver;
  readonly registry: Registry;
  /** Start the HTTP endpoint (GET /metrics); resolves to the bound "host:port". */
  start(): Promise<string>;
  /** Close the endpoint (safe to call when not started, and more than once). */
  stop(): Promise<void>;
}

export interface MetricsOptions {
  readonly logger?: Logger;
  /** Clock for the connected-ranks window (tests). */
  readonly now?: () => number;
}

const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const GRPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Per-run state the observer keeps: bucketing and cached labelled children (no label hashing per batch). */
interface RunMetrics {
  readonly run: Run;
  readonly buckets: DomainBuckets;
  readonly samples: Counter.Internal[];
  readonly bytes: Counter.Internal[];
  readonly assembly: Histogram.Internal<"run">;
  readonly batches: Counter.Internal;
  readonly lossEma: (number | null)[];
  /** Slice key ("slots:offset") → last seen (ms). */
  readonly ranks: Map<string, number>;
  /** Scratch per-series accumulators for one slice. */
  readonly scratchN: Float64Array;
  readonly scratchB: Float64Array;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export function createMetrics(config: MetricsConfig, opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const now = opts.now ?? Date.now;
  const maxSeries = config.maxDomainSeries;
  collectDefaultMetrics({ register: registry });
  // prom-client names three default gauges *_total, which Prometheus reserves for counters
  // (promtool check metrics flags them). Their per-type siblings (nodejs_active_handles{type}
  // and so on) carry the same information: sum() them for the total.
  for (const n of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) registry.removeSingleMetric(n);

  const runs = new Map<string, RunMetrics>();

  // --- identity
  new Gauge({
    name: "mixflow_build_info",
    help: "Always 1; the labels say which mixflow and Node.js versions are running.",
    labelNames: ["version", "node_version"],
    registers: [registry],
  }).set({ version: packageVersion(), node_version: process.version }, 1);

  new Gauge({
    name: "mixflow_runs",
    help: "Runs known to the server, by state (open, closed).",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      let open = 0;
      let closed = 0;
      for (const r of runs.values()) (r.run.state === "open" ? open++ : closed++);
      this.set({ state: "open" }, open);
      this.set({ state: "closed" }, closed);
    },
  });

  // --- weights and losses
  const weight = new Gauge({
    name: "mixflow_domain_weight",
    help: "Weight of the domain in the run's latest committed version (sum over the domains in domain=\"other\").",
    labelNames: ["run", "domain"],
    registers: [registry],
  });
  const versionId = new Gauge({
    name: "mixflow_weights_version",
    help: "Id of the run's latest committed weights version.",
    labelNames: ["run"],
    registers: [registry],
  });
  const versionFrom = new Gauge({
    name: "mixflow_weights_from_step",
    help: "Step from which the run's latest committed version takes effect.",
    labelNames: ["run"],
    registers: [registry],
  });
  const lossEmaG = new Gauge({
    name: "mixflow_train_loss_ema",
    help: `Reported training loss per domain, mean per aggregated step, smoothed by an EMA (alpha ${LOSS_EMA_ALPHA}).`,
    labelNames: ["run", "domain"],
    registers: [registry],
  });
  const evalLossG = new Gauge({
    name: "mixflow_eval_loss",
    help: "Last reported eval loss per domain (domain=\"other\": mean over its domains that reported).",
    labelNames: ["run", "domain"],
    registers: [registry],
  });

  // --- serving
  const samples = new Counter({
    name: "mixflow_samples_served_total",
    help: "Samples (slots) served per domain, over all ranks; re-served batches count again.",
    labelNames: ["run", "domain"],
    registers: [registry],
  });
  const bytes = new Counter({
    name: "mixflow_served_payload_bytes_total",
    help: "Payload bytes (text or tokens) served per domain.",
    labelNames: ["run", "domain"],
    registers: [registry],
  });
  const batches = new Counter({
    name: "mixflow_batches_served_total",
    help: "Batches served: one per (step, rank) request or stream message.",
    labelNames: ["run"],
    registers: [registry],
  });
  const assembly = new Histogram({
    name: "mixflow_batch_assembly_seconds",
    help: "Time to plan and assemble one rank's batch (excludes waiting for versions or the lease).",
    labelNames: ["run"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const strategyUpdate = new Histogram({
    name: "mixflow_strategy_update_seconds",
    help: "Time of one strategy update (one aggregated step).",
    labelNames: ["run"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  // --- signals and requests
  const signals = new Counter({
    name: "mixflow_signals_received_total",
    help: "Signal reports accepted and journaled (duplicates of an accepted report are not counted).",
    labelNames: ["run"],
    registers: [registry],
  });
  const stale = new Counter({
    name: "mixflow_stale_reports_total",
    help: "Reports for steps already aggregated (resumed trainers re-reporting), acknowledged and not recorded.",
    labelNames: ["run"],
    registers: [registry],
  });
  const rejected = new Counter({
    name: "mixflow_requests_rejected_total",
    help: "Requests answered with an error status, by method and gRPC code (ReportSignals = rejected signals). Client cancellations are not counted.",
    labelNames: ["method", "code"],
    registers: [registry],
  });
  const handledTotal = new Counter({
    name: "mixflow_grpc_server_handled_total",
    help: "gRPC calls completed, by method and status code.",
    labelNames: ["method", "code"],
    registers: [registry],
  });
  const handling = new Histogram({
    name: "mixflow_grpc_server_handling_seconds",
    help: "gRPC call duration from receipt to final status (streams: their whole life).",
    labelNames: ["method"],
    buckets: GRPC_BUCKETS,
    registers: [registry],
  });

  // --- streams, ranks, progress (progress read from the runs at scrape time)
  const streamsG = new Gauge({
    name: "mixflow_active_streams",
    help: "Open server streams, by kind (batches, weights) and run.",
    labelNames: ["kind", "run"],
    registers: [registry],
  });
  new Gauge({
    name: "mixflow_connected_ranks",
    help: `Distinct ranks of the run seen in the last ${RANK_WINDOW_MS / 1000} s (by their signal reports).`,
    labelNames: ["run"],
    registers: [registry],
    collect() {
      const cutoff = now() - RANK_WINDOW_MS;
      for (const [id, r] of runs) {
        for (const [k, t] of r.ranks) if (t < cutoff) r.ranks.delete(k);
        this.set({ run: id }, r.ranks.size);
      }
    },
  });
  new Gauge({
    name: "mixflow_current_step",
    help: "Last step whose signals were aggregated into the strategy (-1: none yet).",
    labelNames: ["run"],
    registers: [registry],
    collect() {
      for (const [id, r] of runs) this.set({ run: id }, r.run.lastAggregated);
    },
  });
  new Gauge({
    name: "mixflow_serving_frontier_step",
    help: "Highest step served to any rank by this process (-1: none yet).",
    labelNames: ["run"],
    registers: [registry],
    collect() {
      for (const [id, r] of runs) this.set({ run: id }, r.run.frontier);
    },
  });

  // --- journal
  const jAppend = new Histogram({
    name: "mixflow_journal_append_seconds",
    help: "Time for a group of journal records to become durable (queueing, write and fsync).",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const jFsync = new Histogram({
    name: "mixflow_journal_fsync_seconds",
    help: "Latency of one journal data fsync (none with durability \"none\").",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const jBytes = new Counter({
    name: "mixflow_journal_appended_bytes_total",
    help: "Journal record payload bytes appended.",
    registers: [registry],
  });
  const jRecords = new Counter({
    name: "mixflow_journal_appended_records_total",
    help: "Journal records appended.",
    registers: [registry],
  });

  /** Per-run state, created the first time any hook names the run (recovery included). */
  function of(run: Run): RunMetrics {
    let r = runs.get(run.id);
    if (r && r.run === run) return r;
    const b = domainBuckets(run.names, maxSeries);
    r = {
      run,
      buckets: b,
      samples: b.labels.map((domain) => samples.labels({ run: run.id, domain })),
      bytes: b.labels.map((domain) => bytes.labels({ run: run.id, domain })),
      assembly: assembly.labels({ run: run.id }),
      batches: batches.labels({ run: run.id }),
      lossEma: b.labels.map(() => null),
      ranks: r?.ranks ?? new Map(),
      scratchN: new Float64Array(b.labels.length),
      scratchB: new Float64Array(b.labels.length),
    };
    // Start every domain series at 0 so rate() and the dashboard see it from the first scrape.
    for (const c of r.samples) c.inc(0);
    for (const c of r.bytes) c.inc(0);
    runs.set(run.id, r);
    return r;
  }

  function seeRank(r: RunMetrics, key: string): void {
    if (!r.ranks.has(key) && r.ranks.size >= MAX_RANKS_TRACKED) r.ranks.delete(r.ranks.keys().next().value!);
    r.ranks.set(key, now());
  }

  const observer: MetricsObserver = {
    served(run, batch, seconds) {
      const r = of(run);
      const n = r.scratchN.fill(0);
      const by = r.scratchB.fill(0);
      const { perDomain, bytesPerDomain } = batch.slice;
      for (let d = 0; d < perDomain.length; d++) {
        const s = r.buckets.of[d]!;
        n[s]! += perDomain[d]!;
        by[s]! += bytesPerDomain[d]!;
      }
      for (let s = 0; s < n.length; s++) {
        if (n[s]! > 0) r.samples[s]!.inc(n[s]!);
        if (by[s]! > 0) r.bytes[s]!.inc(by[s]!);
      }
      r.batches.inc();
      r.assembly.observe(seconds);
      seeRank(r, `${batch.slots}:${batch.offset}`);
    },
    signal(run, e: SignalsEvent) {
      const r = of(run);
      signals.inc({ run: run.id });
      seeRank(r, `${e.slots}:${e.offset}`);
    },
    aggregated(run, _step, lossMean, evalLoss) {
      const r = of(run);
      const means = meanBySeries(r.buckets, lossMean);
      means.forEach((m, s) => {
        if (m === null) return;
        const prev = r.lossEma[s];
        const next = prev === null || prev === undefined ? m : prev + LOSS_EMA_ALPHA * (m - prev);
        r.lossEma[s] = next;
        lossEmaG.set({ run: run.id, domain: r.buckets.labels[s]! }, next);
      });
      if (evalLoss) {
        meanBySeries(r.buckets, evalLoss).forEach((m, s) => {
          if (m !== null) evalLossG.set({ run: run.id, domain: r.buckets.labels[s]! }, m);
        });
      }
    },
    version(run, v: Version) {
      const r = of(run);
      sumBySeries(r.buckets, v.weights).forEach((w, s) => weight.set({ run: run.id, domain: r.buckets.labels[s]! }, w));
      versionId.set({ run: run.id }, v.version);
      versionFrom.set({ run: run.id }, v.fromStep);
    },
    staleReport(run) {
      of(run);
      stale.inc({ run: run.id });
    },
    strategyUpdate(run, seconds) {
      of(run);
      strategyUpdate.observe({ run: run.id }, seconds);
    },
    // `rejected` is deliberately not implemented: every rejection reaches `handled` with
    // its status code, including those raised before a run is even looked up, so counting
    // here as well would double count.
    handled(method, code, seconds) {
      const name = grpc.status[code] ?? String(code);
      handledTotal.inc({ method, code: name });
      handling.observe({ method }, seconds);
      if (code !== grpc.status.OK && code !== grpc.status.CANCELLED) rejected.inc({ method, code: name });
    },
    streams(kind, run, delta) {
      streamsG.inc({ kind, run }, delta);
    },
    journalAppend(seconds, records, nbytes) {
      jAppend.observe(seconds);
      jRecords.inc(records);
      jBytes.inc(nbytes);
    },
    journalFsync(seconds) {
      jFsync.observe(seconds);
    },
  };

  const endpoint = metricsEndpoint(registry, config.listen, opts.logger);
  return { observer, registry, start: () => endpoint.start(), stop: () => endpoint.stop() };
}
