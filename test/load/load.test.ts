/**
 * Load: 64 ranks of one run (worldSize 64) stream batches and report every step against
 * a `mixflow serve` child process on loopback, for a fixed amount of work: WARM_STEPS steps
 * of warm-up, which fill the run's duplicate-detection window (65,536 reports = 1,024 steps
 * at 64 ranks) so that the server reaches its steady state, then MEASURE_STEPS more
 * (MIXFLOW_LOAD_STEPS overrides the total; the soak runs 17,000). Pass: no errors, every
 * report acknowledged, aggregation kept up, and the server's RSS at the end within
 * 25 % + 32 MiB of its RSS at the end of warm-up. Bounded by work, not time: a loaded
 * machine takes longer, with the same checks. The numbers (steps/s, reports/s, report
 * latency p50/p99, RSS) are printed as one JSON line and, with MIXFLOW_LOAD_OUT, written
 * to that file.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, removeDir, runConfigFor } from "../security/helpers.js";
import { quantile, rssOf, spawnServer, type ChildServer } from "./child-server.js";

const RANKS = 64;
const SLOTS = 4;
const CHANNELS = 8;
/** The per-run duplicate window (src/runs/run.ts HASH_WINDOW) in steps, plus margin. */
const WARM_STEPS = Math.ceil(65_536 / RANKS) + 100;
const STEPS = Math.max(Number(process.env.MIXFLOW_LOAD_STEPS ?? 0), WARM_STEPS + 400);
/**
 * A hang guard, not a speed bound: ~30 steps/s idle, ~12 with the machine loaded; 250 ms
 * per step leaves room for far slower.
 */
const GUARD_MS = 60_000 + STEPS * 250;

describe(`load: ${RANKS} ranks for ${STEPS} steps`, () => {
  let dir: string;
  let server: ChildServer;

  beforeAll(async () => {
    dir = makeDataDir(2000);
    const cfg = {
      dataDir: "state",
      logLevel: "warn",
      metrics: { enabled: false },
      journal: { durability: "none", checkpointEvery: 20_000, keepHistory: false },
      runs: [runConfigFor("load", { batchSize: RANKS * SLOTS, worldSize: RANKS })],
    };
    writeFileSync(join(dir, "load.json"), JSON.stringify(cfg));
    server = await spawnServer(join(dir, "load.json"));
  });

  afterAll(async () => {
    server?.proc.kill("SIGTERM");
    await server?.exited;
    removeDir(dir);
  });

  it("streams and reports with no errors, every report acked, flat RSS after warm-up", async () => {
    const clients = Array.from({ length: CHANNELS }, () => new MixflowClient(server.address, { deadlineMs: GUARD_MS }));
    const pid = server.proc.pid!;
    const latencies: number[] = [];
    const errors: string[] = [];
    let sent = 0;
    let acked = 0;
    const t0 = performance.now();
    let tWarm = 0;
    let rssWarm = 0;
    let rssPeak = 0;
    const stepsDone = new Array<number>(RANKS).fill(0);
    let minDone = 0;
    // RSS is sampled on progress (every 50 steps all ranks finished), not on a timer.
    const progressed = (): void => {
      const m = Math.min(...stepsDone);
      if (m === minDone) return;
      minDone = m;
      if (m % 50 !== 0 && m !== WARM_STEPS) return;
      const rss = rssOf(pid);
      if (m === WARM_STEPS) {
        rssWarm = rss;
        tWarm = performance.now();
      }
      if (m >= WARM_STEPS) rssPeak = Math.max(rssPeak, rss);
    };

    const rank = async (r: number): Promise<void> => {
      const client = clients[r % CHANNELS]!;
      const stream = client.streamBatchesRaw({ runId: "load", fromStep: 0, rank: r, prefetch: 4, maxBatches: STEPS });
      const losses = new Float32Array(SLOTS);
      try {
        for await (const b of stream) {
          const step = (b as { step: number }).step;
          for (let i = 0; i < SLOTS; i++) losses[i] = 1 + ((step * 31 + r * 7 + i) % 97) / 100;
          const ts = performance.now();
          sent++;
          const res = await client.reportSignals({ runId: "load", step, rank: r, sampleLosses: losses });
          latencies.push(performance.now() - ts);
          if (res.duplicate) errors.push(`rank ${r} step ${step}: first report acknowledged as duplicate`);
          acked++;
          stepsDone[r] = step + 1;
          progressed();
        }
      } catch (e) {
        errors.push(`rank ${r}: ${grpc.status[(e as grpc.ServiceError).code] ?? "no status"} ${(e as Error).message}`);
      } finally {
        stream.cancel();
      }
    };

    await Promise.all(Array.from({ length: RANKS }, (_, r) => rank(r)));
    const elapsed = (performance.now() - t0) / 1000;
    const rssEnd = rssOf(pid);
    const info = await clients[0]!.getRun("load");
    for (const c of clients) c.close();

    const minStep = Math.min(...stepsDone);
    const result = {
      ranks: RANKS,
      slotsPerRank: SLOTS,
      steps: minStep,
      warmSteps: WARM_STEPS,
      seconds: Number(elapsed.toFixed(1)),
      stepsPerSecond: Number((minStep / elapsed).toFixed(1)),
      reportsAcked: acked,
      reportsPerSecond: Math.round(acked / elapsed),
      reportLatencyMs: { p50: Number(quantile(latencies, 0.5).toFixed(2)), p99: Number(quantile(latencies, 0.99).toFixed(2)), max: Number(quantile(latencies, 1).toFixed(2)) },
      rssMiB: { warm: Math.round(rssWarm / 2 ** 20), end: Math.round(rssEnd / 2 ** 20), peakAfterWarm: Math.round(rssPeak / 2 ** 20) },
      secondsAfterWarm: Number(((performance.now() - tWarm) / 1000).toFixed(1)),
      lastAggregatedStep: info.lastAggregatedStep,
    };
    console.log(JSON.stringify({ load: result }));
    if (process.env.MIXFLOW_LOAD_OUT) writeFileSync(process.env.MIXFLOW_LOAD_OUT, JSON.stringify(result, null, 2) + "\n");

    expect(errors).toEqual([]);
    expect(acked).toBe(sent);
    expect(acked).toBe(RANKS * STEPS);
    expect(minStep).toBe(STEPS);
    // Every step that all ranks finished has been aggregated (or is about to be).
    expect(info.lastAggregatedStep).toBeGreaterThanOrEqual(minStep - 2);
    expect(rssWarm).toBeGreaterThan(0);
    // The bound set when the test was written (25 % + 32 MiB), measured from a warm-up that
    // is defined by work: the duplicate window is full, so what grows after it is a leak.
    expect(rssEnd).toBeLessThanOrEqual(rssWarm * 1.25 + 32 * 2 ** 20);
  }, GUARD_MS);
});
