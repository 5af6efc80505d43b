import { describe, expect, it } from "vitest";
import { exp3sStrategy, quantile, rescaleReward } from "../../strategies/exp3s.js";
import { staticStrategy } from "../../strategies/static.js";
import { scenario, simulate } from "../sim/learner.js";
import { checkWeightProperties, ctxOf, signalsOf } from "./strategy-props.js";

describe("exp3s (Graves et al. EXP3.S)", () => {
  it("follows EXP3.S with quantile-rescaled learning progress (hand-computed)", () => {
    const ctx = ctxOf([{}, {}]);
    const p = exp3sStrategy.params.parse({ eta: 0.1, epsilon: 0.2, alpha: 0 });
    const o0 = exp3sStrategy.init(ctx, p);
    // First report only records losses: no progress yet, w = [0, 0], π = uniform.
    const o1 = exp3sStrategy.update(ctx, p, o0.state, signalsOf(0, [3, 3], [2, 2], [2, 2]));
    expect(o1.weights).toEqual([0.5, 0.5]);
    // Second: progress r = [3 − 2.5, 3 − 3] = [0.5, 0]. Reservoir {0, 0.5}: q20 = 0.1, q80 = 0.4,
    //   so r̂ = [1, −1]. π = [0.5, 0.5]; r̃ = r̂/π = [2, −2]; w = η r̃ = [0.2, −0.2] → [0, −0.4].
    //   π = 0.8·softmax([0, −0.4]) + 0.1 = 0.8·[0.598688, 0.401312] + 0.1 = [0.578950, 0.421050].
    const o2 = exp3sStrategy.update(ctx, p, o1.state, signalsOf(1, [2.5, 3], [2, 2], [4, 4]));
    expect(o2.state.w[0]).toBe(0);
    expect(o2.state.w[1]).toBeCloseTo(-0.4, 12);
    expect(o2.weights![0]).toBeCloseTo(0.57895, 5);
    expect(o2.weights![1]).toBeCloseTo(0.42105, 5);
  });

  it("weight sharing α_t = 1/t: at t = 2 with two arms the log-weights are fully shared", () => {
    const ctx = ctxOf([{}, {}]);
    const p = exp3sStrategy.params.parse({ eta: 0.1, epsilon: 0.2 });
    const o1 = exp3sStrategy.update(ctx, p, exp3sStrategy.init(ctx, p).state, signalsOf(0, [3, 3], [2, 2], [2, 2]));
    // α = 1/2: w_i = log(½e^{g_i} + ½e^{g_j}) is the same for both arms.
    const o2 = exp3sStrategy.update(ctx, p, o1.state, signalsOf(1, [2.5, 3], [2, 2], [4, 4]));
    expect(o2.weights![0]).toBeCloseTo(0.5, 12);
  });

  it("rescales by the 20th/80th percentiles into [−1, 1]", () => {
    expect(quantile([0, 0.5], 0.2)).toBeCloseTo(0.1, 12);
    expect(rescaleReward(0.25, 0.1, 0.4)).toBeCloseTo(0, 12);
    expect(rescaleReward(5, 0.1, 0.4)).toBe(1);
    expect(rescaleReward(-5, 0.1, 0.4)).toBe(-1);
  });

  it("keeps the reward reservoir bounded", () => {
    const ctx = ctxOf([{}, {}, {}]);
    const p = exp3sStrategy.params.parse({ reservoirSize: 10 });
    let st = exp3sStrategy.init(ctx, p).state;
    for (let t = 0; t < 50; t++) st = exp3sStrategy.update(ctx, p, st, signalsOf(t, [3 - t * 0.01, 2, 1 + (t % 3)], [4, 4, 4], [4, 4, 4])).state;
    expect(st.reservoir.length).toBe(10);
    expect(st.seen).toBe(49 * 3);
  });

  it("weights stay a distribution within bounds under arbitrary finite signals; state round-trips", () => {
    checkWeightProperties(exp3sStrategy, { reservoirSize: 8 });
  });

  it("with the paper's small η it stays close to uniform over a short run (clean: within 0.1%)", () => {
    const opts = { steps: 1500, batchSize: 32, seed: 2 };
    const r = simulate(exp3sStrategy, {}, scenario("clean"), opts);
    const u = simulate(staticStrategy, {}, scenario("clean"), opts);
    expect(Math.abs(r.finalObjective / u.finalObjective - 1)).toBeLessThan(0.001);
  });
});
