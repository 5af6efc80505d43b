import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { competenceAt, competenceStrategy, type CompetenceParams } from "../../strategies/competence.js";
import type { DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { scenario, simulate } from "../sim/learner.js";

function dom(name: string, o: Partial<DomainInfo> = {}): DomainInfo {
  return { name, trainSamples: 1000, evalSamples: 100, size: 1000, minWeight: 0, maxWeight: 1, pinned: false, uniqueClusters: 0, compressRatio: 0, ...o };
}
const ctxOf = (domains: DomainInfo[]): StrategyContext => ({ domains, batchSize: 8, seed: 1, objective: null });
const sig = (step: number): StepSignals => ({ step, lossSum: [1, 1], count: [1, 1], refLossSum: null, evalLoss: null, served: [1, 1], samples: null, servedTotal: [1, 1] });
const P = (raw: unknown): CompetenceParams => competenceStrategy.params.parse(raw);

describe("competence", () => {
  it("paper formulas", () => {
    const p = P({ T: 100 });
    expect(p.c0).toBe(0.01);
    expect(competenceAt(p, 0)).toBeCloseTo(0.01, 12);
    // sqrt: c(25) = sqrt(25·(1 − 0.0001)/100 + 0.0001) = sqrt(0.250075) = 0.5000750
    expect(competenceAt(p, 25)).toBeCloseTo(0.500075, 6);
    expect(competenceAt(p, 100)).toBe(1);
    expect(competenceAt(p, 1e9)).toBe(1);
    // linear: c(50) = 50·0.99/100 + 0.01 = 0.505
    expect(competenceAt({ ...p, variant: "linear" }, 50)).toBeCloseTo(0.505, 12);
  });

  it("emits fixed weights with growing competence every `every` steps until full", () => {
    const ctx = ctxOf([dom("a"), dom("b")]);
    const p = P({ T: 100, every: 25, weights: { a: 3, b: 1 }, domains: ["a"] });
    const i = competenceStrategy.init(ctx, p);
    expect(i.weights).toEqual([0.75, 0.25]);
    expect(i.competence).toEqual([0.01, 1]); // b is outside the curriculum
    let s = i.state;
    const out: [number, number][] = [];
    for (let t = 0; t < 150; t++) {
      const u = competenceStrategy.update(ctx, p, s, sig(t));
      s = u.state;
      if (u.weights) {
        expect(u.weights).toEqual([0.75, 0.25]);
        out.push([t, u.competence![0]!]);
      }
    }
    // Emitted after steps 24, 49, 74, 99 with c(25), c(50), c(75), c(100) = 1; nothing after.
    expect(out.map((x) => x[0])).toEqual([24, 49, 74, 99]);
    expect(out[0]![1]).toBeCloseTo(0.500075, 6);
    expect(out[3]![1]).toBe(1);
  });

  it("property: weights within bounds, competence in (0, 1] and non-decreasing; state round-trips", () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-4, max: 1, noNaN: true }), fc.integer({ min: 1, max: 500 }), fc.constantFrom("sqrt", "linear"), (c0, T, variant) => {
        const ctx = ctxOf([dom("a", { minWeight: 0.3 }), dom("b", { maxWeight: 0.6 }), dom("c")]);
        const p = P({ c0, T, variant, every: 7 });
        let s = competenceStrategy.init(ctx, p).state;
        let last = 0;
        for (let t = 0; t < 60; t++) {
          const u = competenceStrategy.update(ctx, p, JSON.parse(JSON.stringify(s)), sig(t));
          s = u.state;
          if (!u.weights) continue;
          expect(u.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
          expect(u.weights[0]).toBeGreaterThanOrEqual(0.3 - 1e-12);
          expect(u.weights[1]).toBeLessThanOrEqual(0.6 + 1e-12);
          const c = u.competence![0]!;
          expect(c).toBeGreaterThan(0);
          expect(c).toBeLessThanOrEqual(1);
          expect(c).toBeGreaterThanOrEqual(last);
          last = c;
        }
      }),
      { numRuns: 100 },
    );
  });

  it("simulated learner: serves its fixed weights (the learner has no difficulty model, so no win is claimed)", () => {
    const r = simulate(competenceStrategy, { T: 500, every: 50 }, scenario("clean"), { steps: 600, batchSize: 32, seed: 1 });
    expect(r.versions.length).toBe(1 + 10); // init + emissions after steps 49, 99, …, 499 (c reaches 1 at 500)
    r.servedShare.forEach((x) => expect(x).toBeCloseTo(0.25, 2));
  });
});
