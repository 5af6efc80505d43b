import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { doremiStrategy, doremiStep, excessLosses, type DoremiParams } from "../../strategies/doremi.js";
import { foldSignals } from "../../src/runs/aggregator.js";
import type { SignalsEvent } from "../../src/history/events.js";
import { staticStrategy } from "../../strategies/static.js";
import type { DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { scenario, simulate } from "../sim/learner.js";

function dom(name: string, o: Partial<DomainInfo> = {}): DomainInfo {
  return { name, trainSamples: 1000, evalSamples: 100, size: 1000, minWeight: 0, maxWeight: 1, pinned: false, uniqueClusters: 0, compressRatio: 0, ...o };
}
function ctxOf(domains: DomainInfo[]): StrategyContext {
  return { domains, batchSize: 8, seed: 1, objective: null };
}
function sig(step: number, lossSum: number[], count: number[], refLossSum: number[] | null = null): StepSignals {
  return { step, lossSum, count, refLossSum, evalLoss: null, served: count, samples: null, servedTotal: count };
}
const P = (raw: unknown): DoremiParams => doremiStrategy.params.parse(raw);

describe("doremi", () => {
  it("defaults are the paper's: eta 1, smoothing 1e-3, averaged output", () => {
    const p = P({});
    expect(p.eta).toBe(1);
    expect(p.smoothing).toBe(1e-3);
    expect(p.output).toBe("average");
  });

  it("hand-computed steps with reported reference losses", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({ every: 1 });
    const i = doremiStrategy.init(ctx, p);
    expect(i.weights).toEqual([0.5, 0.5]);
    // Step 1: train means [3, 2], reference means [2, 2] → λ = [1, 0].
    // α' = [0.5e, 0.5] → [e/(1+e), 1/(1+e)] = [0.7310586, 0.2689414];
    // smoothed: 0.999·x + 0.001/2 → [0.7308275, 0.2691725]; average of one step = same.
    const u1 = doremiStrategy.update(ctx, p, i.state, sig(0, [3, 2], [1, 1], [2, 2]));
    expect(u1.weights![0]).toBeCloseTo(0.7308275, 6);
    expect(u1.weights![1]).toBeCloseTo(0.2691725, 6);
    // Step 2: 'a' absent (count 0) keeps λ_a = 1; 'b' mean 5/2 = 2.5 vs ref 3/2 = 1.5 → λ_b = 1.
    // Equal λ → α unchanged by the EG step; smoothing again: 0.999·0.7308275 + 0.0005 = 0.7305967.
    // Output = average of α_1, α_2 = (0.7308275 + 0.7305967)/2 = 0.7307121.
    const u2 = doremiStrategy.update(ctx, p, u1.state, sig(1, [0, 5], [0, 2], [0, 3]));
    expect(u2.state.alpha[0]).toBeCloseTo(0.7305967, 6);
    expect(u2.weights![0]).toBeCloseTo(0.7307121, 6);
    expect(u2.weights![1]).toBeCloseTo(1 - 0.7307121, 6);
  });

  it("falls back to recorded reference losses, and to zero excess without any reference", () => {
    const ctx = ctxOf([dom("a"), dom("b"), dom("c")]);
    const p = P({ every: 1, output: "current", smoothing: 0, referenceLosses: { a: 1, b: 4 } });
    const i = doremiStrategy.init(ctx, p);
    // means [3, 2, 9]: λ_a = max(0, 3−1) = 2, λ_b = max(0, 2−4) = 0 (clipped), λ_c = 0 (no reference).
    // α ∝ [e², 1, 1] → a = e²/(e²+2) = 7.389056/9.389056 = 0.7869860.
    const u = doremiStrategy.update(ctx, p, i.state, sig(0, [3, 2, 9], [1, 1, 1]));
    expect(u.state.excess).toEqual([2, 0, 0]);
    expect(u.weights![0]).toBeCloseTo(0.786986, 6);
    expect(u.weights![1]).toBeCloseTo(0.106507, 6);
    expect(u.weights![2]).toBeCloseTo(0.106507, 6);
  });

  it("a rank that sent no reference losses does not count in the reference mean (real aggregator)", () => {
    // Two ranks, two samples of domain a each, every loss 2 and every reference loss 2. Rank 1
    // sends no reference losses. Dividing rank 0's reference sum (4) by all 4 samples gave a
    // reference mean of 1 and an excess of 1.0; the true excess is 0.
    const f32 = (xs: number[]) => Buffer.from(new Float32Array(xs).buffer).toString("base64");
    const slice = (offset: number, withRef: boolean): SignalsEvent => ({
      runId: "r", step: 0, offset, slots: 2, hash: String(offset), lossSum: [4], count: [2],
      sampleLosses: f32([2, 2]), refLossSum: withRef ? [4] : null, refLosses: withRef ? f32([2, 2]) : null, evalLoss: null,
    });
    const plan = (offset: number, slots: number) => ({ domains: new Uint32Array(slots), samples: Float64Array.from({ length: slots }, (_, i) => offset + i) });
    const sg = foldSignals(0, 1, [slice(0, true), slice(2, false)], [4], [4], plan);
    expect(excessLosses([dom("a")], P({}), sg, [0])).toEqual([0]);
    // Per-domain sums only (no per-sample pairs): the partly referenced step is not used.
    const sums: StepSignals = { ...sg, samples: null };
    expect(excessLosses([dom("a")], P({}), sums, [0.25])).toEqual([0.25]);
  });

  it("clips the excess per sample, as the paper does per token", () => {
    // Losses [3, 1] against references [2, 2]: per-sample excess (1 + 0)/2 = 0.5, where the
    // clipped difference of means would be max(0, 2 − 2) = 0.
    const s: StepSignals = {
      ...sig(0, [4], [2], [4]),
      refCount: [2],
      samples: { domain: [0, 0], sample: [0, 1], loss: [3, 1], ref: [2, 2] },
    };
    expect(excessLosses([dom("a")], P({}), s, [0])).toEqual([0.5]);
  });

  it("emits a version only every `every` steps", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({ every: 3 });
    let s = doremiStrategy.init(ctx, p).state;
    const emitted: boolean[] = [];
    for (let t = 0; t < 6; t++) {
      const u = doremiStrategy.update(ctx, p, s, sig(t, [2, 1], [1, 1], [1, 1]));
      emitted.push(u.weights !== null);
      s = u.state;
    }
    expect(emitted).toEqual([false, false, true, false, false, true]);
  });

  it("doremiStep does not overflow with huge excess losses", () => {
    const w = doremiStep([0.5, 0.5], [1e6, 0], 1, 1e-3);
    expect(w[0]).toBeCloseTo(0.9995, 9);
    expect(w.every(Number.isFinite)).toBe(true);
  });

  it("property: weights are a distribution within bounds; deterministic; state round-trips JSON", () => {
    // A fourth, unbounded domain: finalizeWeights' clamp needs one free coordinate to absorb
    // leftover mass when every other one sits on a bound (see the report on util/weights.ts).
    const domains = [dom("a", { minWeight: 0.1 }), dom("b", { maxWeight: 0.5 }), dom("c", { pinned: true }), dom("d")];
    const ctx = ctxOf(domains);
    const fin = fc.double({ min: 0, max: 1e6, noNaN: true });
    const step = fc.record({
      lossSum: fc.array(fin, { minLength: 4, maxLength: 4 }),
      count: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 4, maxLength: 4 }),
      ref: fc.option(fc.array(fin, { minLength: 4, maxLength: 4 }), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.double({ min: 0.01, max: 50, noNaN: true }), (steps, eta) => {
        const p = P({ every: 1, eta, referenceLosses: { a: 1 } });
        const run = () => {
          let s = doremiStrategy.init(ctx, p).state;
          const ws: number[][] = [];
          steps.forEach((x, t) => {
            const u = doremiStrategy.update(ctx, p, JSON.parse(JSON.stringify(s)), sig(t, x.lossSum, x.count, x.ref));
            expect(JSON.parse(JSON.stringify(u.state))).toEqual(u.state);
            s = u.state;
            ws.push(u.weights!.slice());
          });
          return ws;
        };
        const a = run();
        expect(run()).toEqual(a);
        for (const w of a) {
          expect(w.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 9);
          w.forEach((x, i) => {
            expect(Number.isFinite(x)).toBe(true);
            expect(x).toBeGreaterThanOrEqual(domains[i]!.minWeight - 1e-12);
            expect(x).toBeLessThanOrEqual(domains[i]!.maxWeight + 1e-12);
          });
          expect(w[2]).toBeGreaterThanOrEqual(1 / 4 - 1e-9); // pinned: keeps its initial (uniform) weight
        }
      }),
      { numRuns: 150 },
    );
  });

  describe("simulated learner", () => {
    const opts = { steps: 2000, batchSize: 64, seed: 1 };
    /** A good reference: the per-domain final loss of a uniform run (DoReMi's reference model). */
    function withReference(name: "transfer" | "duplicates" | "noise") {
      const sc = scenario(name);
      const uni = simulate(staticStrategy, {}, sc, opts);
      const referenceLosses: Record<string, number> = {};
      sc.domains.forEach((d, i) => (referenceLosses[d.name] = uni.finalLosses[i]!));
      return { sc, uni, referenceLosses };
    }

    it("beats uniform on `transfer`: upweights the general domain the others learn from", () => {
      const { sc, uni, referenceLosses } = withReference("transfer");
      const r = simulate(doremiStrategy, { referenceLosses }, sc, opts);
      expect(r.finalObjective).toBeLessThan(uni.finalObjective);
      expect(r.servedShare[0]).toBeGreaterThan(0.2); // 'general' above its uniform share
    });

    it("beats uniform on `duplicates`: memorised boilerplate has no excess loss", () => {
      const { sc, uni, referenceLosses } = withReference("duplicates");
      const r = simulate(doremiStrategy, { referenceLosses }, sc, opts);
      expect(r.finalObjective).toBeLessThan(uni.finalObjective);
      expect(r.servedShare[4]).toBeLessThan(0.05);
    });

    it("known failure (not a win): noisy reports of an unlearnable domain give positive clipped excess loss", () => {
      const { sc, referenceLosses } = withReference("noise");
      const r = simulate(doremiStrategy, { referenceLosses }, sc, opts);
      expect(r.servedShare[4]).toBeGreaterThan(0.2); // noise domain upweighted above uniform 0.2
    });
  });
});
