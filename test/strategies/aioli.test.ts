import { describe, expect, it } from "vitest";
import { expectValidWeights } from "./strategy-props.js";
import fc from "fast-check";
import { aioliStrategy, estimateA, normalizeA, probeMixture, probeOrder, type AioliParams, type AioliState } from "../../strategies/aioli.js";
import { staticStrategy } from "../../strategies/static.js";
import type { DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { scenario, simulate } from "../sim/learner.js";

function dom(name: string, o: Partial<DomainInfo> = {}): DomainInfo {
  return { name, trainSamples: 1000, evalSamples: 100, size: 1000, minWeight: 0, maxWeight: 1, pinned: false, uniqueClusters: 0, compressRatio: 0, ...o };
}
const ctxOf = (domains: DomainInfo[], seed = 1): StrategyContext => ({ domains, batchSize: 8, seed, objective: null });
const P = (raw: unknown): AioliParams => aioliStrategy.params.parse(raw);
function sig(step: number, served: number[], evalLoss: (number | null)[] | null = null): StepSignals {
  return { step, lossSum: served.map((c) => c * 3), count: served, refLossSum: null, evalLoss, served, samples: null, servedTotal: served };
}

describe("aioli", () => {
  it("defaults are the authors' recommended settings", () => {
    const p = P({});
    expect([p.eta, p.ema, p.lpRounds, p.lpSteps, p.updateSteps, p.oneHotFactor, p.normalizeA]).toEqual([0.2, 0.1, 4, 4, 250, 0.625, true]);
    expect(probeMixture(3, 1, 0.6)).toEqual([0.2, 0.6, 0.2]);
    expect(probeOrder(1, 0, 3, 2).slice().sort()).toEqual([0, 0, 1, 1, 2, 2]);
  });

  it("estimates A by least squares and normalises it as the paper (hand-computed)", () => {
    // Probe on 0: x = [0.625, 0.375], decrease y = [0.5, 0.1]; probe on 1: x = [0.375, 0.625], y = [0.3, 0.4].
    // Row 0: 0.625a + 0.375b = 0.5, 0.375a + 0.625b = 0.3 → det 0.25 → a = (0.3125 − 0.1125)/0.25 = 0.8, b = 0.
    // Row 1: 0.625a + 0.375b = 0.1, 0.375a + 0.625b = 0.4 → a = (0.0625 − 0.15)/0.25 = −0.35, b = 0.85.
    const rows = [
      { x: [0.625, 0.375], y: [0.5, 0.1] },
      { x: [0.375, 0.625], y: [0.3, 0.4] },
    ];
    const a = estimateA(rows, 2, 0);
    expect(a[0]![0]).toBeCloseTo(0.8, 10);
    expect(a[0]![1]).toBeCloseTo(0, 10);
    expect(a[1]![0]).toBeCloseTo(-0.35, 10);
    expect(a[1]![1]).toBeCloseTo(0.85, 10);
    // Shift by −0.35 → [[1.15, 0.35], [0, 1.2]], sum 2.7 → [[0.425926, 0.129630], [0, 0.444444]].
    const n = normalizeA(a);
    expect(n[0]![0]).toBeCloseTo(1.15 / 2.7, 10);
    expect(n[1]![1]).toBeCloseTo(1.2 / 2.7, 10);
    expect(n[1]![0]).toBeCloseTo(0, 10);
  });

  it("full round: probes, eval requests at probe boundaries, then w ∝ exp(η Σ_i Ā_ij) (hand-computed)", () => {
    const ctx = ctxOf([dom("a"), dom("b")], 7);
    const p = P({ lpRounds: 1, lpSteps: 2, updateSteps: 10, eta: 1, ridge: 0 });
    const order = probeOrder(7, 0, 2, 1);
    const mix = (j: number) => (j === 0 ? [5, 3] : [3, 5]); // 0.625 / 0.375 of a batch of 8
    // Eval losses chosen so the probe of domain 0 lowers losses by [0.5, 0.1] and of 1 by [0.3, 0.4].
    const dec = (j: number) => (j === 0 ? [0.5, 0.1] : [0.3, 0.4]);
    const e0 = [5, 5];
    const e1 = e0.map((v, i) => v - dec(order[0]!)[i]!);
    const e2 = e1.map((v, i) => v - dec(order[1]!)[i]!);
    const i = aioliStrategy.init(ctx, p);
    expect(i.requestEvalIn).toBe(1); // baseline eval on step 0
    expect(i.weights).toEqual(probeMixture(2, order[0]!, 0.625));
    const u0 = aioliStrategy.update(ctx, p, i.state, sig(0, mix(order[0]!), e0));
    expect(u0.weights).toBeNull();
    const u1 = aioliStrategy.update(ctx, p, u0.state, sig(1, mix(order[0]!)));
    expect(u1.weights).toEqual(probeMixture(2, order[1]!, 0.625)); // second probe from step 2
    expect(u1.requestEvalIn).toBe(1);
    const u2 = aioliStrategy.update(ctx, p, u1.state, sig(2, mix(order[1]!), e1));
    const u3 = aioliStrategy.update(ctx, p, u2.state, sig(3, mix(order[1]!)));
    expect(u3.weights).toBeNull();
    expect(u3.requestEvalIn).toBe(1); // closing eval of LearnParams
    const u4 = aioliStrategy.update(ctx, p, u3.state, sig(4, mix(order[1]!), e2));
    // Ā = normalised A above; column sums [0.425926, 0.574074]; w0 = 1/(1 + e^0.148148) = 0.463029.
    expect(u4.weights![0]).toBeCloseTo(0.463029, 5);
    expect(u4.weights![1]).toBeCloseTo(0.536971, 5);
    expect(u4.state.phase).toBe("exploit");
    // The next round starts again with LearnParams at step 10.
    let s: AioliState = u4.state;
    let w: readonly number[] | null = null;
    for (let t = 5; t <= 9 && w === null; t++) {
      const u = aioliStrategy.update(ctx, p, s, sig(t, [4, 4]));
      s = u.state;
      w = u.weights;
      if (t < 9) expect(w).toBeNull();
    }
    expect(w).toEqual(probeMixture(2, probeOrder(7, 1, 2, 1)[0]!, 0.625));
  });

  it("without eval losses A stays 0 and the mixture falls back to the base weights", () => {
    const ctx = ctxOf([dom("a"), dom("b"), dom("c")]);
    const p = P({ lpRounds: 1, lpSteps: 1, updateSteps: 20, initial: { a: 2, b: 1, c: 1 } });
    let s = aioliStrategy.init(ctx, p).state;
    let last: readonly number[] | null = null;
    for (let t = 0; t < 12; t++) {
      const u = aioliStrategy.update(ctx, p, s, sig(t, [3, 3, 2]));
      s = u.state;
      if (u.weights) last = u.weights;
    }
    expect(s.phase).toBe("exploit");
    expect(last![0]).toBeCloseTo(0.5, 12);
  });

  it("property: valid weights under arbitrary finite signals; deterministic; JSON state", () => {
    const domains = [dom("a", { minWeight: 0.1 }), dom("b", { maxWeight: 0.5 }), dom("c", { pinned: true }), dom("d")];
    const ctx = ctxOf(domains);
    const p = P({ lpRounds: 1, lpSteps: 2, updateSteps: 12, eta: 3, ema: null });
    const st = fc.record({
      served: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 4, maxLength: 4 }),
      ev: fc.option(fc.array(fc.option(fc.double({ min: 0, max: 1e4, noNaN: true }), { nil: null }), { minLength: 4, maxLength: 4 }), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(st, { minLength: 1, maxLength: 40 }), (steps) => {
        const run = () => {
          let s = aioliStrategy.init(ctx, p).state;
          const out: (readonly number[] | null)[] = [];
          steps.forEach((x, t) => {
            const u = aioliStrategy.update(ctx, p, JSON.parse(JSON.stringify(s)), sig(t, x.served, x.ev));
            expect(JSON.parse(JSON.stringify(u.state))).toEqual(u.state);
            s = u.state;
            out.push(u.weights);
            if (u.weights) {
              expectValidWeights(u.weights, ctx);
              expect(u.weights[2]).toBeGreaterThanOrEqual(0.25 - 1e-9);
            }
          });
          return out;
        };
        expect(run()).toEqual(run());
      }),
      {
        numRuns: 100,
        // A CI run's counterexample: a least-squares solve gave −0, which JSON writes as 0,
        // so the resumed state differed from the live one. Always tried first.
        examples: [
          [
            [
              { served: [0, 0, 0, 0], ev: null },
              { served: [0, 0, 0, 0], ev: [null, null, null, 0] },
              { served: [0, 0, 1, 2], ev: [null, null, 2.911156251343984e-107, 0] },
              { served: [0, 0, 0, 0], ev: [null, null, 0, 0] },
              { served: [0, 0, 0, 0], ev: [null, null, 0, null] },
            ],
          ],
        ],
      },
    );
  });

  it("k = 22 (The Pile): LearnParams leaves room, so most of a 2,000-step run exploits", () => {
    // Before the LearnParams cap, 4 sweeps × 22 domains × 4 steps filled every 250-step
    // round and the run never left LearnParams (0 exploit steps).
    const k = 22;
    const ctx: StrategyContext = { domains: Array.from({ length: k }, (_, i) => dom(`d${i}`)), batchSize: 64, seed: 3, objective: null };
    const p = P({});
    const o = aioliStrategy.init(ctx, p);
    let s: AioliState = o.state;
    let evalAt = o.requestEvalIn ? o.requestEvalIn - 1 : -1;
    let w = o.weights.slice();
    let exploit = 0;
    const total = new Array<number>(k).fill(0);
    for (let t = 0; t < 2000; t++) {
      const served = w.map((x) => Math.round(x * 64));
      served.forEach((c, i) => (total[i]! += c));
      // Eval loss falls with what each domain has been served.
      const ev = t === evalAt ? total.map((n) => 5 / Math.sqrt(1 + n / 100)) : null;
      const u = aioliStrategy.update(ctx, p, s, { ...sig(t, served, ev), servedTotal: total.slice() });
      s = u.state;
      if (u.weights) w = u.weights.slice();
      if (u.requestEvalIn) evalAt = t + u.requestEvalIn;
      if (s.phase === "exploit") exploit++;
    }
    expect(exploit).toBeGreaterThan(1000);
  });

  describe("simulated learner", () => {
    const opts = (seed: number) => ({ steps: 2000, batchSize: 64, seed });

    it("`target`: the cumulative variant with longer probes beats uniform (seeds 1, 2)", () => {
      // Measured: −0.020 and −0.013 in objective vs uniform. With the recommended defaults
      // (η 0.2, normalised A, EMA) the mixture stays within e^0.2 of uniform and the effect
      // is ~1e-4 — real but too small to pin against the learner's eval noise.
      const params = { lpSteps: 8, lpRounds: 2, eta: 5, ema: null };
      for (const seed of [1, 2]) {
        const sc = scenario("target");
        const uni = simulate(staticStrategy, {}, sc, opts(seed));
        const r = simulate(aioliStrategy, params, sc, opts(seed));
        expect(r.finalObjective).toBeLessThan(uni.finalObjective - 0.005);
      }
    });

    it("defaults: exploit mixtures stay within a factor e^η of the base weights (normalised A, EMA)", () => {
      const r = simulate(aioliStrategy, {}, scenario("clean"), opts(3));
      const exploit = r.versions.filter((v) => v.fromStep % 250 > 64);
      expect(exploit.length).toBeGreaterThan(3);
      for (const v of exploit) expect(Math.max(...v.weights) / Math.min(...v.weights)).toBeLessThanOrEqual(Math.exp(0.2) + 1e-9);
    });
  });
});
