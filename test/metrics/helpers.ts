/**
 * Shared by the metrics and report tests: a real in-process mixflow server on loopback
 * (temp data dir, durability none, tiny generated JSONL domains, metrics on port 0) and a
 * two-rank trainer driven through the real grpc-js client, which records exactly what it
 * reported so tests can compare the server's outputs with it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { serverConfig } from "../../src/config/schema.js";
import { MixflowClient } from "../../src/client/index.js";
import { createMetrics, type Metrics } from "../../src/metrics/index.js";
import { MixflowServer } from "../../src/server/server.js";

export const DOMAINS = ["prose", "code", "math"] as const;


/** Write `n` train and eval lines per domain; samples differ in length per domain so bytes differ. */
export function writeDomains(dir: string, n = 64): void {
  fs.mkdirSync(dir, { recursive: true });
  DOMAINS.forEach((name, d) => {
    for (const split of ["train", "eval"]) {
      const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${name} ${split} ${i} ${"x".repeat(10 + 7 * d + (i % 5))}` }));
      fs.writeFileSync(path.join(dir, `${name}.${split}.jsonl`), lines.join("\n") + "\n");
    }
  });
}

export function runConfigFor(id: string, dataDir: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    seed: 11,
    batchSize: 8,
    worldSize: 2,
    evalProbes: 2,
    aggregationTimeoutMs: 60_000,
    strategy: { name: "exp3", params: { warmupSteps: 0 } },
    domains: DOMAINS.map((name) => ({
      name,
      train: { format: "jsonl", paths: [path.join(dataDir, `${name}.train.jsonl`)] },
      eval: { format: "jsonl", paths: [path.join(dataDir, `${name}.eval.jsonl`)] },
    })),
    ...over,
  };
}

export interface Started {
  readonly server: MixflowServer;
  readonly metrics: Metrics;
  readonly metricsAddress: string;
  readonly root: string;
  stop(): Promise<void>;
}

/** Start a server with one run `runId` and metrics on 127.0.0.1:0. */
export async function startServer(runId: string, opts: { maxDomainSeries?: number; root?: string } = {}): Promise<Started> {
  const root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-metrics-"));
  const data = path.join(root, "domains");
  writeDomains(data);
  const config = serverConfig.parse({
    dataDir: path.join(root, "state"),
    listen: "127.0.0.1:0",
    logLevel: "silent",
    journal: { durability: "none" },
    metrics: { listen: "127.0.0.1:0", maxDomainSeries: opts.maxDomainSeries ?? 64 },
    runs: [runConfigFor(runId, data)],
  });
  const metrics = createMetrics(config.metrics);
  const server = await MixflowServer.start({ config, observer: metrics.observer });
  const metricsAddress = await metrics.start();
  return {
    server,
    metrics,
    metricsAddress,
    root,
    async stop() {
      await server.stop(1000);
      await metrics.stop();
    },
  };
}

/** Deterministic loss of a sample: per-domain level, slowly decreasing, float32 like the wire. */
export function lossOf(domain: number, step: number, slot: number): number {
  return Math.fround(1 + domain * 0.5 + 1 / (1 + step) + (slot % 3) * 0.01);
}

export interface Driven {
  /** Per step, per domain: the mean of the reported sample losses (null: domain absent). */
  readonly stepMeans: (number | null)[][];
  /** Last eval losses reported, by domain name. */
  readonly evalLosses: Record<string, number>;
  /** Samples received per domain (all ranks, all steps). */
  readonly samples: number[];
  /** Payload bytes received per domain. */
  readonly bytes: number[];
  readonly batches: number;
  readonly reports: number;
}

/**
 * Two ranks, each with its own client, fetch `steps` steps and report per-sample losses
 * (rank 0 also eval losses every 4th step). Waits until the run aggregated every step.
 */
export async function driveRun(address: string, server: MixflowServer, runId: string, steps: number): Promise<Driven> {
  const ranks = [new MixflowClient(address), new MixflowClient(address)];
  const k = DOMAINS.length;
  const sums = Array.from({ length: steps }, () => new Array<number>(k).fill(0));
  const counts = Array.from({ length: steps }, () => new Array<number>(k).fill(0));
  const samples = new Array<number>(k).fill(0);
  const bytes = new Array<number>(k).fill(0);
  const evalLosses: Record<string, number> = {};
  let batches = 0;
  let reports = 0;
  try {
    for (let step = 0; step < steps; step++) {
      await Promise.all(
        ranks.map(async (c, rank) => {
          const b = await c.nextBatch(runId, step, rank, 2);
          batches++;
          const losses = new Float32Array(b.slots);
          for (let i = 0; i < b.slots; i++) {
            const d = b.slotDomains[i]!;
            losses[i] = lossOf(d, step, b.slotOffset + i);
            sums[step]![d]! += losses[i]!;
            counts[step]![d]!++;
            samples[d]!++;
            bytes[d]! += b.text!.offsets[i + 1]! - b.text!.offsets[i]!;
          }
          const ev: Record<string, number> = {};
          if (rank === 0 && step % 4 === 0) {
            DOMAINS.forEach((name, d) => (ev[name] = 2 + d - step * 0.01));
            Object.assign(evalLosses, ev);
          }
          await c.reportSignals({ runId, step, rank, worldSize: 2, sampleLosses: losses, evalLosses: ev });
          reports++;
        }),
      );
    }
  } finally {
    for (const c of ranks) c.close();
  }
  const run = server.registry.get(runId);
  for (let i = 0; i < 200 && run.lastAggregated < steps - 1; i++) {
    await run.idle();
    await new Promise((r) => setTimeout(r, 10));
  }
  // The last step counts as aggregated before the version it produced is durable and
  // published: wait for that too, so callers see the run's final state.
  await run.idle();
  const stepMeans = sums.map((row, s) => row.map((x, d) => (counts[s]![d]! > 0 ? x / counts[s]![d]! : null)));
  return { stepMeans, evalLosses, samples, bytes, batches, reports };
}

/** The EMA the metrics keep, computed independently from what the trainer reported. */
export function expectedEma(stepMeans: readonly (number | null)[][], alpha: number): (number | null)[] {
  const k = stepMeans[0]?.length ?? 0;
  const ema = new Array<number | null>(k).fill(null);
  for (const row of stepMeans) {
    row.forEach((m, d) => {
      if (m === null) return;
      const prev = ema[d];
      ema[d] = prev === null || prev === undefined ? m : prev + alpha * (m - prev);
    });
  }
  return ema;
}

/** Parse Prometheus text exposition into name{labels} → value (tests only; no escapes in our labels). */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
