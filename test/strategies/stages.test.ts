import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { stagesStrategy, stageAtStep, type StagesParams } from "../../strategies/stages.js";
import type { DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { scenario, simulate, weightsAt } from "../sim/learner.js";

function dom(name: string, o: Partial<DomainInfo> = {}): DomainInfo {
  return { name, trainSamples: 1000, evalSamples: 100, size: 1000, minWeight: 0, maxWeight: 1, pinned: false, uniqueClusters: 0, compressRatio: 0, ...o };
}
const ctxOf = (domains: DomainInfo[]): StrategyContext => ({ domains, batchSize: 8, seed: 1, objective: null });
const sig = (step: number, lossSum: number[], count: number[]): StepSignals => ({ step, lossSum, count, refLossSum: null, evalLoss: null, served: count, samples: null, servedTotal: count });
const P = (raw: unknown): StagesParams => stagesStrategy.params.parse(raw);

describe("stages", () => {
  it("requires an end on every stage but the last", () => {
    expect(() => P({ stages: [{ weights: { a: 1 } }, { weights: { b: 1 } }] })).toThrow();
  });

  it("step-only stages are planned at init with exact boundaries", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({
      stages: [
        { name: "warm", weights: { a: 1 }, untilStep: 100 },
        { name: "mix", weights: { a: 1, b: 1 }, untilStep: 300 },
        { name: "anneal", weights: { b: 1 } },
      ],
    });
    const i = stagesStrategy.init(ctx, p);
    expect(i.weights).toEqual([1, 0]);
    expect(i.planned).toEqual([
      { fromStep: 100, weights: [0.5, 0.5] },
      { fromStep: 300, weights: [0, 1] },
    ]);
    expect(stagesStrategy.update(ctx, p, i.state, sig(0, [1, 1], [1, 1])).weights).toBeNull();
    // A later stage that ends before an earlier one is skipped.
    expect(stageAtStep(P({ stages: [{ weights: { a: 1 }, untilStep: 50 }, { weights: { b: 1 }, untilStep: 20 }, { weights: { a: 1 } }] }), 60)).toBe(2);
  });

  it("advances when the named domains' smoothed loss drops below the threshold (hand-computed EMA)", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({
      smoothing: 0.5,
      stages: [{ weights: { a: 1 }, untilLoss: { domains: ["a"], below: 2 } }, { weights: { b: 1 } }],
    });
    const i = stagesStrategy.init(ctx, p);
    expect(i.planned).toBeUndefined();
    // step 0: a mean 4 → EMA 4 (first value); step 1: mean 1 → 0.5·4 + 0.5·1 = 2.5 (not < 2);
    // step 2: mean 1 → 0.5·2.5 + 0.5·1 = 1.75 < 2 → stage 1.
    const u0 = stagesStrategy.update(ctx, p, i.state, sig(0, [8, 0], [2, 0]));
    expect(u0.state.loss).toEqual([4, null]);
    const u1 = stagesStrategy.update(ctx, p, u0.state, sig(1, [1, 5], [1, 1]));
    expect(u1.state.loss[0]).toBe(2.5);
    expect(u1.weights).toBeNull();
    const u2 = stagesStrategy.update(ctx, p, u1.state, sig(2, [1, 5], [1, 1]));
    expect(u2.state.loss[0]).toBe(1.75);
    expect(u2.weights).toEqual([0, 1]);
    expect(u2.state.stage).toBe(1);
  });

  it("untilStep still ends a loss-conditioned stage, whichever comes first", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({ stages: [{ weights: { a: 1 }, untilStep: 3, untilLoss: { domains: ["a"], below: 0 } }, { weights: { b: 1 } }] });
    let s = stagesStrategy.init(ctx, p).state;
    const emitted: number[] = [];
    for (let t = 0; t < 5; t++) {
      const u = stagesStrategy.update(ctx, p, s, sig(t, [9, 9], [1, 1]));
      if (u.weights) emitted.push(t);
      s = u.state;
    }
    expect(emitted).toEqual([2]); // the version after step 2 takes effect at step 3
  });

  it("property: weights within bounds under arbitrary finite losses; deterministic; JSON state", () => {
    const ctx = ctxOf([dom("a", { minWeight: 0.1 }), dom("b", { maxWeight: 0.7 }), dom("c")]);
    const p = P({
      stages: [
        { weights: { a: 1 }, untilLoss: { domains: ["a", "b"], below: 3 } },
        { weights: { b: 5, c: 1 }, untilStep: 20 },
        { weights: { c: 1 } },
      ],
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 3, maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 })), { maxLength: 30 }), (steps) => {
        const run = () => {
          let s = stagesStrategy.init(ctx, p).state;
          const out: (readonly number[] | null)[] = [];
          steps.forEach(([l, c], t) => {
            const u = stagesStrategy.update(ctx, p, JSON.parse(JSON.stringify(s)), sig(t, l.map((x, i) => x * c[i]!), c));
            s = u.state;
            out.push(u.weights);
            if (u.weights) {
              expect(u.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
              expect(u.weights[0]).toBeGreaterThanOrEqual(0.1 - 1e-12);
              expect(u.weights[1]).toBeLessThanOrEqual(0.7 + 1e-12);
            }
          });
          return out;
        };
        expect(run()).toEqual(run());
      }),
      { numRuns: 100 },
    );
  });

  it("simulated learner: a loss-conditioned stage ends when 'web' has learned enough", () => {
    const p = { stages: [{ weights: { web: 1 }, untilLoss: { domains: ["web"], below: 2.6 } }, { weights: { web: 1, books: 1, code: 1, wiki: 1 } }] };
    const r = simulate(stagesStrategy, p, scenario("clean"), { steps: 400, batchSize: 32, seed: 1 });
    expect(r.versions).toHaveLength(2);
    const switchAt = r.versions[1]!.fromStep;
    // L_web(n) = 2 + 8(n + 100)^−0.35 < 2.6 needs n ≳ 1500 samples ≈ 50 steps of 32 (plus EMA lag).
    expect(switchAt).toBeGreaterThan(40);
    expect(switchAt).toBeLessThan(400);
    expect(weightsAt(r, switchAt - 1)).toEqual([1, 0, 0, 0]);
    expect(weightsAt(r, switchAt)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });
});
