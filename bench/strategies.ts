/**
 * bench:strategies — cost of one strategy update and of assembling (planning) one batch of
 * 1,024 slots, for K = 10 … 100,000 domains, per registered strategy.
 *
 * The update is timed on synthetic but realistic step signals (per-domain losses for the
 * domains the step served, eval losses every 10th step) after a warm-up, as the median of
 * repeated calls on a fixed state. Batch planning uses the planner the server uses. A
 * strategy whose single update takes over 1 s at some K is not run at larger K
 * (reported as null). The baseline for the ratio line is the same measurement at K = 10.
 *
 * Last line: one JSON object with update_us and assemble_us per K for the default
 * strategy ("mixflow"), plus every strategy's update_us.
 */
import { STRATEGIES } from "../strategies/index.js";
import type { AnyStrategy, DomainInfo, StepSignals, StrategyContext } from "../strategies/types.js";
import { BatchPlanner } from "../src/sampling/plan.js";

const KS = (process.env.BENCH_KS ?? "10,22,100,1000,10000,100000").split(",").map(Number);
const B = 1024;
/** Strategies that need data the bench cannot synthesise (a recorded run, proxy results). */
const NEEDS_INPUT: Record<string, unknown> = {
  schedule: { points: [{ step: 0, weights: {} }] },
};

function ctxFor(k: number): StrategyContext {
  const domains: DomainInfo[] = Array.from({ length: k }, (_, i) => ({
    name: `d${i}`,
    trainSamples: 1_000_000,
    evalSamples: 1000,
    size: 1e8 * (1 + (i % 7)),
    minWeight: 0,
    maxWeight: 1,
    pinned: false,
    uniqueClusters: 500_000,
    compressRatio: 0.3 + (i % 5) * 0.1,
  }));
  return { domains, batchSize: B, seed: 1, objective: null };
}

function signals(k: number, step: number, served: Uint32Array, total: Float64Array): StepSignals {
  const lossSum = new Array<number>(k).fill(0);
  const count = new Array<number>(k).fill(0);
  for (let d = 0; d < k; d++) {
    if (served[d]! > 0) {
      count[d] = served[d]!;
      lossSum[d] = served[d]! * (2 + (d % 13) / 10 + 1 / Math.sqrt(step + 1));
    }
  }
  const evalLoss = step % 10 === 0 ? Array.from({ length: k }, (_, d) => 2 + (d % 11) / 10 + 1 / Math.sqrt(step + 1)) : null;
  return { step, lossSum, count, refLossSum: null, evalLoss, served: Array.from(served), samples: null, servedTotal: Array.from(total) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeUpdates(s: AnyStrategy, params: unknown, k: number): number | null {
  const ctx = ctxFor(k);
  const init = s.init(ctx, params);
  const planner = new BatchPlanner(1, B, ctx.domains.map(() => ({ size: 1_000_000, difficultyOrder: null })));
  planner.addVersion({ version: 1, fromStep: 0, weights: init.weights, competence: null });
  let state = init.state;
  const runs: number[] = [];
  const steps = k >= 10_000 ? 6 : 30;
  for (let step = 0; step < steps; step++) {
    const served = planner.stepCounts(step);
    const total = planner.cumulative(step + 1);
    const sig = signals(k, step, served, total);
    const t0 = performance.now();
    const out = s.update(ctx, params, state, sig);
    const dt = performance.now() - t0;
    state = out.state;
    if (step >= Math.min(3, steps - 3)) runs.push(dt * 1000);
    if (dt > 1000) return null;
  }
  return median(runs);
}

function timeAssemble(k: number): number {
  const w = Array.from({ length: k }, (_, i) => 1 + (i % 5));
  const sum = w.reduce((a, b) => a + b, 0);
  const planner = new BatchPlanner(1, B, Array.from({ length: k }, () => ({ size: 1_000_000, difficultyOrder: null })));
  planner.addVersion({ version: 1, fromStep: 0, weights: w.map((x) => x / sum), competence: null });
  const g = planner.newBatch();
  for (let s = 0; s < 20; s++) planner.plan(s, g);
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let s = 0; s < 20; s++) planner.plan(1000 + r * 20 + s, g);
    runs.push(((performance.now() - t0) / 20) * 1000);
  }
  return median(runs);
}

function main(): void {
  const result: Record<string, Record<string, number | null>> = {};
  const assemble: Record<string, number> = {};
  for (const k of KS) {
    assemble[k] = Number(timeAssemble(k).toFixed(1));
    console.log(`assemble B=${B} K=${k}: ${assemble[k]} µs/batch`);
  }
  for (const [name, s] of STRATEGIES) {
    if (name === "replay" || name === "regmix") continue; // no online update to time
    const parsed = s.params.safeParse(NEEDS_INPUT[name] ?? {});
    if (!parsed.success) {
      console.log(`${name.padEnd(12)} skipped: needs params the bench cannot invent (${parsed.error.issues[0]?.path.join(".")})`);
      continue;
    }
    const params = parsed.data;
    result[name] = {};
    let dead = false;
    for (const k of KS) {
      const us = dead ? null : timeUpdates(s, params, k);
      if (us === null) dead = true;
      result[name]![k] = us === null ? null : Number(us.toFixed(1));
    }
    console.log(`${name.padEnd(12)} update µs: ${KS.map((k) => `K=${k}: ${result[name]![k] ?? "n/a"}`).join("  ")}`);
  }
  const base = assemble[KS[0]!]!;
  console.log(
    `assemble growth vs K=${KS[0]}: ${KS.map((k) => `${k}: ${(assemble[k]! / base).toFixed(2)}x`).join(", ")} (O(B log K) predicts ${KS.map((k) => (Math.log2(k) / Math.log2(KS[0]!)).toFixed(2)).join(", ")})`,
  );
  console.log(JSON.stringify({ strategy: "mixflow", update_us: result.mixflow, assemble_us: assemble, all_update_us: result, batch_slots: B }));
}

main();
