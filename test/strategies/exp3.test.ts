import { describe, expect, it } from "vitest";
import { exp3Epsilon, exp3Strategy } from "../../strategies/exp3.js";
import { staticStrategy } from "../../strategies/static.js";
import { scenario, simulate } from "../sim/learner.js";
import { checkWeightProperties, ctxOf, signalsOf } from "./strategy-props.js";

describe("exp3 (ODM)", () => {
  it("follows ODM's update rule on two domains (hand-computed)", () => {
    const ctx = ctxOf([{}, {}]);
    const p = exp3Strategy.params.parse({ warmupSteps: 0 });
    const o0 = exp3Strategy.init(ctx, p);
    expect(o0.weights).toEqual([0.5, 0.5]);
    // Step 0: mean losses [2, 4], π = [0.5, 0.5], α = 0.9:
    //   R̂ = 0.1·2/0.5 = 0.4, 0.1·4/0.5 = 0.8.  t = 1: ε = min(1/2, sqrt(ln2/2) = 0.589) = 0.5,
    //   so 1 − Kε = 0 and π = [0.5, 0.5] (pure exploration).
    const o1 = exp3Strategy.update(ctx, p, o0.state, signalsOf(0, [2, 4], [2, 2], [2, 2]));
    expect(o1.state.rewards[0]).toBeCloseTo(0.4, 12);
    expect(o1.state.rewards[1]).toBeCloseTo(0.8, 12);
    expect(o1.weights).toEqual([0.5, 0.5]);
    // Step 1: R̂ = 0.9·0.4 + 0.4 = 0.76, 0.9·0.8 + 0.8 = 1.52. t = 2: ε = sqrt(ln2/4) = 0.416277;
    //   softmax(ε_prev·R̂) = softmax(0.5·[0.76, 1.52]) = [0.406128, 0.593872];
    //   π = (1 − 2·0.416277)·softmax + 0.416277 = [0.484281, 0.515719].
    const o2 = exp3Strategy.update(ctx, p, o1.state, signalsOf(1, [2, 4], [2, 2], [4, 4]));
    expect(o2.state.rewards[0]).toBeCloseTo(0.76, 12);
    expect(o2.state.rewards[1]).toBeCloseTo(1.52, 12);
    expect(o2.weights![0]).toBeCloseTo(0.484281, 6);
    expect(o2.weights![1]).toBeCloseTo(0.515719, 6);
  });

  it("keeps the initial mixture during warm-up while rewards accumulate", () => {
    const ctx = ctxOf([{}, {}, {}]);
    const p = exp3Strategy.params.parse({ warmupSteps: 10, initial: { d0: 2, d1: 1, d2: 1 } });
    const o0 = exp3Strategy.init(ctx, p);
    expect(o0.weights).toEqual([0.5, 0.25, 0.25]);
    const o1 = exp3Strategy.update(ctx, p, o0.state, signalsOf(5, [1, 9, 1], [4, 4, 4], [4, 4, 4]));
    expect(o1.weights).toBeNull();
    expect(o1.state.rewards[1]).toBeCloseTo((0.1 * 9) / 0.25, 12);
  });

  it("ε_t = min(1/K, sqrt(ln K/(K t)))", () => {
    expect(exp3Epsilon(4, 1)).toBe(0.25);
    expect(exp3Epsilon(4, 10_000)).toBeCloseTo(Math.sqrt(Math.log(4) / 40_000), 15);
  });

  it("weights stay a distribution within bounds under arbitrary finite signals; state round-trips", () => {
    checkWeightProperties(exp3Strategy, { warmupSteps: 3 });
  });

  it("known failure: raw-loss reward drifts towards unlearnable noise and loses to uniform", () => {
    const opts = { steps: 3000, batchSize: 32, seed: 1 };
    const r = simulate(exp3Strategy, { warmupSteps: 100 }, scenario("noise"), opts);
    const u = simulate(staticStrategy, {}, scenario("noise"), opts);
    expect(r.servedShare[4]).toBeGreaterThan(0.22); // uniform would be 0.2
    expect(r.finalObjective).toBeGreaterThan(u.finalObjective);
  });
});
