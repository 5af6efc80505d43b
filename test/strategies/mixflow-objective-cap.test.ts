/**
 * With an objective, a domain outside it earns weight only through its measured transfer
 * (the lower confidence bound of its RLS β), and never more than the best objective domain
 * is worth. A held-out run (irrelevant family, seed 0, docs/learning.md) gave an irrelevant
 * domain 0.43 of the mixture at step 480 from one lucky bound; these tests pin the cap.
 */
import { describe, expect, it } from "vitest";
import { mixflowStrategy, mixflowWeights, type MixflowState } from "../../strategies/mixflow.js";
import { ctxOf } from "./strategy-props.js";

/** The "shrink" rule's cap (the best objective domain); the "ratio" rule's is tested below. */
const P = mixflowStrategy.params.parse({ dither: 0, rule: "shrink", se: "pooled", priorSpan: "always" });
const PRATIO = mixflowStrategy.params.parse({ dither: 0, rule: "ratio", se: "telescoping" });

/** Four objective domains with learnability 1..4, one outside the objective with β = `beta`. */
function stateWith(beta: number, resVar: number): { ctx: ReturnType<typeof ctxOf>; st: MixflowState } {
  const K = 5;
  const ctx = ctxOf(Array.from({ length: K }, () => ({})), [0.25, 0.25, 0.25, 0.25, 0], 32, 3);
  const { state } = mixflowStrategy.init(ctx, P) as { state: MixflowState };
  const Pm = new Array<number>(K * K).fill(0);
  for (let i = 0; i < K; i++) Pm[i * K + i] = 1e-6;
  const st: MixflowState = {
    ...state,
    value: [1, 2, 3, 4, 0.1],
    beta: [0, 0, 0, 0, beta],
    P: Pm,
    resVar,
    evals: 10,
    // No shrinkage data: values are used as they are.
  };
  return { ctx, st };
}

const noShrink = { ...P, shrinkage: false };

describe("mixflow objective transfer credit", () => {
  it("a precise, huge β outside the objective is capped at the best objective domain's worth", () => {
    const { ctx, st } = stateWith(50, 1e-12);
    const w = mixflowWeights(ctx, noShrink, st, [0, 0, 0, 0, 0]);
    const bestObjective = Math.max(...w.slice(0, 4));
    expect(w[4]).toBeLessThanOrEqual(bestObjective + 1e-12);
    // The cap binds: without it the outside domain would take most of the mixture.
    expect(w[4]).toBeGreaterThan(0.2);
    expect(w[4]).toBeCloseTo(w[3]!, 12);
  });

  it("a small measured transfer earns weight below the cap, and none without evidence", () => {
    const small = stateWith(0.3, 1e-12);
    const w = mixflowWeights(small.ctx, noShrink, small.st, [0, 0, 0, 0, 0]);
    expect(w[4]).toBeGreaterThan(w[0]!); // 0.3 + ... vs 0.25·1: it helps, it is served
    expect(w[4]).toBeLessThan(w[3]!);
    const noisy = stateWith(0.3, 1e9); // sd ≫ β: lower bound 0, the floor only
    const wn = mixflowWeights(noisy.ctx, noShrink, noisy.st, [0, 0, 0, 0, 0]);
    expect(wn[4]).toBeCloseTo(P.floor, 6);
  });

  it("ratio rule: transfer from outside the objective is worth at most the median objective domain", () => {
    // Objective values 1..4 without standard errors: every ratio 1, reference = median 2.5, so
    // each objective domain is worth 0.25 · 2.5 (its β is 0); the outside one min(β, 0.625).
    const { ctx, st } = stateWith(50, 1e-12);
    const w = mixflowWeights(ctx, PRATIO, st, [0, 0, 0, 0, 0]);
    for (let i = 0; i < 5; i++) expect(w[i]).toBeCloseTo(0.2, 12);
    const small = stateWith(0.3, 1e-12);
    const ws = mixflowWeights(small.ctx, PRATIO, small.st, [0, 0, 0, 0, 0]);
    // scores 0.625 ×4 and 0.3: w = 0.01 + 0.95·score/2.8.
    expect(ws[4]).toBeCloseTo(0.01 + (0.95 * 0.3) / 2.8, 9);
    expect(ws[0]).toBeCloseTo(0.01 + (0.95 * 0.625) / 2.8, 9);
  });
});
