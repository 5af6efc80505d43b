import { describe, expect, it } from "vitest";
import { thompsonStrategy } from "../../strategies/thompson.js";
import { scenario, simulate } from "../sim/learner.js";
import { checkWeightProperties, ctxOf, signalsOf } from "./strategy-props.js";

describe("thompson (running-min loss decrease)", () => {
  it("rewards the decrease of the running-min smoothed loss per sample (hand-computed)", () => {
    const ctx = ctxOf([{}, {}], null, 16); // B/(2K) = 4: per-sample denominator floor
    const p = thompsonStrategy.params.parse({ lossSmoothing: 0.5, discount: 1 });
    const o0 = thompsonStrategy.init(ctx, p);
    expect(o0.weights).toEqual([0.5, 0.5]);
    const o1 = thompsonStrategy.update(ctx, p, o0.state, signalsOf(0, [4, 4], [8, 8], [8, 8]));
    expect(o1.state.min).toEqual([4, 4]);
    expect(o1.weights).toBeNull(); // no reward yet
    // ema0 = 0.5·4 + 0.5·2 = 3 → min 3, g0 = (4 − 3)/8 = 0.125; domain 1 flat: g1 = 0.
    const o2 = thompsonStrategy.update(ctx, p, o1.state, signalsOf(1, [2, 4], [8, 8], [16, 16]));
    expect(o2.state.s).toEqual([0.125, 0]);
    expect(o2.state.q).toEqual([0.015625, 0]);
    expect(o2.weights).toBeNull(); // one observation each: no variance yet
    // ema0 = 2.5, g0 = 0.0625: mean 0.09375, var 0.0009765625 (pooled for domain 1),
    //   sd = sqrt(var/2) = 0.0221 — domain 0 is 3σ ahead and wins every draw:
    //   w = 0.9·[1, 0] + 0.1/2 = [0.95, 0.05].
    const o3 = thompsonStrategy.update(ctx, p, o2.state, signalsOf(2, [2, 4], [8, 8], [24, 24]));
    expect(o3.state.s).toEqual([0.1875, 0]);
    expect(o3.weights![0]).toBeCloseTo(0.95, 12);
    expect(o3.weights![1]).toBeCloseTo(0.05, 12);
  });

  it("draws are deterministic in (seed, step)", () => {
    const ctx = ctxOf([{}, {}, {}]);
    const p = thompsonStrategy.params.parse({});
    let st = thompsonStrategy.init(ctx, p).state;
    const outs: (readonly number[] | null)[] = [];
    for (let t = 0; t < 6; t++) {
      const o = thompsonStrategy.update(ctx, p, st, signalsOf(t, [3 - 0.1 * t, 3 - 0.05 * t + (t % 2) * 0.03, 3], [8, 8, 8], [8, 8, 8]));
      outs.push(o.weights);
      st = o.state;
    }
    let st2 = thompsonStrategy.init(ctx, p).state;
    for (let t = 0; t < 6; t++) {
      const o = thompsonStrategy.update(ctx, p, st2, signalsOf(t, [3 - 0.1 * t, 3 - 0.05 * t + (t % 2) * 0.03, 3], [8, 8, 8], [8, 8, 8]));
      expect(o.weights).toEqual(outs[t]);
      st2 = o.state;
    }
  });

  it("weights stay a distribution within bounds under arbitrary finite signals; state round-trips", () => {
    checkWeightProperties(thompsonStrategy, { draws: 16 });
  });

  it("resists noise (serves it below uniform) but is drawn to memorisable boilerplate", () => {
    const opts = { steps: 3000, batchSize: 32, seed: 1 };
    expect(simulate(thompsonStrategy, {}, scenario("noise"), opts).servedShare[4]).toBeLessThan(0.18);
    expect(simulate(thompsonStrategy, {}, scenario("duplicates"), opts).servedShare[4]).toBeGreaterThan(0.2);
  });
});
