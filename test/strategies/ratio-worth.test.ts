/**
 * The default strategy's "ratio" rule (strategies/util/ratio-worth.ts) and the telescoping
 * standard error of its learnability estimates (strategies/mixflow.ts `valueEstimates`).
 */
import { describe, expect, it } from "vitest";
import { median, ratioWorth } from "../../strategies/util/ratio-worth.js";
import { mixflowStrategy, mixflowWeights, valueEstimates, type MixflowState } from "../../strategies/mixflow.js";
import { ctxOf, signalsOf } from "./strategy-props.js";

describe("ratioWorth", () => {
  it("median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("hand-computed: a domain below the reference keeps the part of its shortfall the noise cannot explain", () => {
    // ref = median(1, 1.2, 0.9, 0.2) = 0.95, s_ref = 0.05; z = 2.
    // domain 3: d = 0.75, B = 1 − 4·(0.05² + 0.05²)/0.75² = 1 − 0.02/0.5625; ρ = 1 − B·0.75/0.95.
    const r = ratioWorth([1, 1.2, 0.9, 0.2], [0.0025, 0.0025, 0.0025, 0.0025], [true, true, true, true], 2);
    expect(r.ref).toBeCloseTo(0.95, 12);
    expect(r.refLo).toBeCloseTo(0.85, 12);
    const B = 1 - 0.02 / 0.5625;
    expect(r.ratio[3]).toBeCloseTo(1 - (B * 0.75) / 0.95, 12);
    // domain 2: d = 0.05, well within the noise: B = 0, ratio 1; above the reference: 1.
    expect(r.ratio.slice(0, 3)).toEqual([1, 1, 1]);
  });

  it("a reference not separable from zero gives every domain 1; unknown estimates get 1; ratios stay in [0, 1]", () => {
    expect(ratioWorth([0.01, 0.02, -0.5], [0.01, 0.01, 0.01], [true, true, true], 1).ratio).toEqual([1, 1, 1]);
    const r = ratioWorth([1, 1, null, -3], [1e-6, 1e-6, 1e-6, 1e-6], [true, true, true, true], 1);
    expect(r.ratio).toEqual([1, 1, 1, 0]);
    // Domains outside the reference set do not move the reference.
    expect(ratioWorth([1, 1, 100], [1e-6, 1e-6, 1e-6], [true, true, false], 1).ref).toBe(1);
  });
});

describe("the learnability estimate's standard error", () => {
  /** Feed one domain's probe losses e_0..e_n at steps 100, 125, … with 100 samples per interval. */
  function fold(losses: number[], p = mixflowStrategy.params.parse({ warmupSteps: 0, warmupExposure: false, structure: false })) {
    const ctx = ctxOf([{}, {}], null, 200, 1);
    let st: MixflowState = mixflowStrategy.init(ctx, p).state;
    let served = 0;
    losses.forEach((e, t) => {
      served += 100;
      st = mixflowStrategy.update(ctx, p, st, signalsOf(100 + 25 * t, [3, 3], [100, 100], [served, served], [e, e])).state;
    });
    return { st, p };
  }

  it("Σc² telescopes: after gains g1..g3 with γ = 0.95 the evals enter with (γ², γ−γ², 1−γ, −1), not √3 gains' worth", () => {
    const { st } = fold([3, 2.9, 2.85, 2.83]);
    const g = 0.95;
    const c2 = g ** 4 + (g - g * g) ** 2 + (1 - g) ** 2 + 1;
    expect(st.coef2Sum![0]).toBeCloseTo(c2, 12);
    // Hand-computed se²: σ_e² = Σ(Δg)²/N/6 (discounted by γ² per eval), × Σc² × 1e6 / S².
    const gains = [0.1, 0.05, 0.02];
    const d2 = g * g * (gains[1]! - gains[0]!) ** 2 + (gains[2]! - gains[1]!) ** 2;
    const n = g * g + 1;
    const S = 100 * (g * g + g + 1);
    const tele = valueEstimates(st, "telescoping");
    expect(tele.se2[0]).toBeCloseTo(((d2 / n / 6) * c2 * 1e6) / (S * S), 9);
    // The pooled (pre-2026-12-02) error treats the gains as independent: 2·Σγ^2a instead of Σc².
    const pooled = valueEstimates(st, "pooled");
    expect(pooled.se2[0]).toBeCloseTo(((d2 / n / 6) * 2 * (g ** 4 + g * g + 1) * 1e6) / (S * S), 9);
    expect(pooled.se2[0]! / tele.se2[0]!).toBeGreaterThan(2.5);
  });

  it("a state from a journal without Σc² falls back to the pooled error", () => {
    const { st } = fold([3, 2.9, 2.85, 2.83]);
    const { coef2Sum: _, ...old } = st;
    expect(valueEstimates(old as MixflowState, "telescoping").se2[0]).toBeCloseTo(valueEstimates(st, "pooled").se2[0]!, 12);
  });
});

describe("held ratios", () => {
  it("while the reference is inseparable from zero, the last measurable verdict holds", () => {
    const p = mixflowStrategy.params.parse({ rule: "ratio", se: "telescoping" });
    const ctx = ctxOf([{}, {}, {}], null, 300, 1);
    const init = mixflowStrategy.init(ctx, p).state;
    // Learnability ~0 everywhere with a large noise: nothing separable (unknown σ: se = ∞).
    const flat: MixflowState = { ...init, value: [0.01, 0.012, 0.0], evals: 30 };
    for (const x of mixflowWeights(ctx, p, flat, [0, 0, 0])) expect(x).toBeCloseTo(1 / 3, 12);
    const held: MixflowState = { ...flat, heldRatio: [1, 1, 0] };
    const w = mixflowWeights(ctx, p, held, [0, 0, 0]);
    expect(w[2]).toBeCloseTo(0.01, 12);
    expect(w[0]).toBeCloseTo(0.495, 12);
  });

  it("an eval folded while nothing is separable keeps the held ratios in the state", () => {
    const p = mixflowStrategy.params.parse({ rule: "ratio", se: "telescoping" });
    const ctx = ctxOf([{}, {}, {}], null, 300, 1);
    const init = mixflowStrategy.init(ctx, p).state;
    // No noise estimate yet (se = ∞): the reference is not separable from zero.
    const st: MixflowState = { ...init, minEval: [3, 3, 3], lastEval: [3, 3, 3], evals: 30, heldRatio: [1, 1, 0] };
    const o = mixflowStrategy.update(ctx, p, st, signalsOf(1000, [3, 3, 3], [100, 100, 100], [5000, 5000, 5000], [2.99, 2.99, 3]));
    expect((o.state as MixflowState).heldRatio).toEqual([1, 1, 0]);
    expect(o.weights![2]).toBeCloseTo(0.01, 12);
  });

  it("a flat domain among learning ones is cut at the eval where the difference is significant, and the cut is stored", () => {
    const p = mixflowStrategy.params.parse({ rule: "ratio", se: "telescoping", warmupSteps: 0, warmupExposure: false, structure: false });
    const ctx = ctxOf([{}, {}, {}], null, 300, 1);
    let st: MixflowState = mixflowStrategy.init(ctx, p).state;
    let served = 0;
    const wob = [0.004, -0.003, 0.002, -0.004, 0.003, -0.002, 0.001, -0.001];
    for (let t = 0; t < 12; t++) {
      served += 100;
      const ev = [3 - 0.1 * t + wob[t % 8]!, 3 - 0.1 * t - wob[(t + 3) % 8]!, 3 + wob[(t + 5) % 8]!];
      st = mixflowStrategy.update(ctx, p, st, signalsOf(25 * t, [3, 3, 3], [100, 100, 100], [served, served, served], ev)).state;
    }
    expect(st.heldRatio![0]).toBe(1);
    expect(st.heldRatio![1]).toBe(1);
    expect(st.heldRatio![2]).toBeLessThan(0.05);
  });
});
