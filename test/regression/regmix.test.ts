import { describe, expect, it } from "vitest";
import { ranks, spearman, pearson } from "../../strategies/fit/stats.js";
import { fitLinear, predictLinear } from "../../strategies/fit/linear.js";
import { fitGbdt, predictGbdt } from "../../strategies/fit/gbdt.js";
import { dirichlet, sampleCandidates, sampleProxyMixtures } from "../../strategies/fit/dirichlet.js";
import { fitMixtureModel, proposeMixture } from "../../strategies/fit/regmix.js";
import { planProxySweep, proposeFromSweep } from "../../strategies/fit/regmix-sweep.js";
import { makeRng } from "../../strategies/util/rng.js";

describe("stats", () => {
  it("ranks average ties and spearman matches a hand computation", () => {
    expect(ranks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    // Perfect monotone (non-linear) relation → 1; reversed → −1.
    expect(spearman([1, 2, 3, 4], [1, 8, 27, 64])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // ranks a = [1,2,3], b = [1,3,2]: pearson = (−1·−1 + 0 + 1·0)/(√2·√2) = 0.5
    expect(spearman([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBe(0);
  });
});

describe("linear least squares", () => {
  it("recovers y = 1 + 2·x0 − 3·x1 exactly", () => {
    const x = [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
      [2, 5],
    ];
    const y = x.map((r) => 1 + 2 * r[0]! - 3 * r[1]!);
    const m = fitLinear(x, y);
    expect(m.intercept).toBeCloseTo(1, 6);
    expect(m.coef[0]).toBeCloseTo(2, 6);
    expect(m.coef[1]).toBeCloseTo(-3, 6);
    expect(predictLinear(m, [3, 3])).toBeCloseTo(1 + 6 - 9, 6);
  });
  it("handles features collinear with the intercept (mixtures summing to 1)", () => {
    const x = [
      [0.2, 0.8],
      [0.5, 0.5],
      [0.9, 0.1],
    ];
    const y = x.map((r) => 4 - r[0]!);
    const m = fitLinear(x, y);
    x.forEach((r, i) => expect(predictLinear(m, r)).toBeCloseTo(y[i]!, 6));
  });
});

describe("gbdt", () => {
  it("learns a step function and is deterministic", () => {
    const x = Array.from({ length: 60 }, (_, i) => [i / 60, (i * 7) % 13]);
    const y = x.map((r) => (r[0]! > 0.5 ? 3 : 1));
    const m = fitGbdt(x, y, { trees: 200, learningRate: 0.1, maxDepth: 2, minLeaf: 3 });
    expect(predictGbdt(m, [0.1, 0])).toBeCloseTo(1, 2);
    expect(predictGbdt(m, [0.9, 0])).toBeCloseTo(3, 2);
    expect(JSON.stringify(fitGbdt(x, y, { trees: 200, learningRate: 0.1, maxDepth: 2, minLeaf: 3 }))).toBe(JSON.stringify(m));
  });
  it("with one tree of depth 1 is the best single split, leaves shrunk by lr/(n+λ)", () => {
    // y = [0,0,0,0,10,10,10,10], base = 5; residuals [−5×4, +5×4]; split at x = 3.5.
    // Left leaf = lr·Σr/(n+λ) = 1·(−20)/(4+1) = −4 → prediction 1; right → 9.
    const x = [0, 1, 2, 3, 4, 5, 6, 7].map((v) => [v]);
    const y = [0, 0, 0, 0, 10, 10, 10, 10];
    const m = fitGbdt(x, y, { trees: 1, learningRate: 1, maxDepth: 1, minLeaf: 1, lambda: 1 });
    expect(m.trees[0]!.threshold[0]).toBe(3.5);
    expect(predictGbdt(m, [0])).toBeCloseTo(1, 12);
    expect(predictGbdt(m, [7])).toBeCloseTo(9, 12);
  });
});

describe("dirichlet and the proxy sampler", () => {
  it("dirichlet draws are distributions even for tiny concentrations", () => {
    const rng = makeRng(3);
    for (let i = 0; i < 200; i++) {
      const w = dirichlet([1e-6, 0.01, 2, 50], rng);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      expect(w.every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
    }
  });
  it("dirichlet mean matches alpha / sum(alpha)", () => {
    const rng = makeRng(4);
    const n = 4000;
    const mean = [0, 0, 0];
    for (let i = 0; i < n; i++) dirichlet([1, 2, 5], rng).forEach((x, j) => (mean[j] = mean[j]! + x / n));
    expect(mean[0]).toBeCloseTo(1 / 8, 1);
    expect(mean[2]).toBeCloseTo(5 / 8, 1);
  });
  it("proxy mixtures: seeded, distinct, rounded to the minimum, within the usage bound", () => {
    const prior = [0.5, 0.3, 0.15, 0.05];
    const a = sampleProxyMixtures(prior, 64, 11);
    expect(sampleProxyMixtures(prior, 64, 11)).toEqual(a);
    expect(sampleProxyMixtures(prior, 64, 12)).not.toEqual(a);
    expect(a).toHaveLength(64);
    expect(new Set(a.map((r) => r.join(","))).size).toBe(64);
    for (const r of a) {
      expect(Math.abs(r.reduce((x, y) => x + y, 0) - 1)).toBeLessThan(4 * 1e-4);
      r.forEach((x) => expect(Math.abs(x / 2e-4 - Math.round(x / 2e-4))).toBeLessThan(1e-6));
      r.forEach((x, j) => expect(x).toBeLessThanOrEqual(Math.min(prior[j]! * 15, 1) + 2e-4));
    }
    // Varied concentration: some near-one-hot mixtures and some close to the prior.
    expect(a.some((r) => Math.max(...r) > 0.9)).toBe(true);
    expect(a.some((r) => Math.max(...r) < 0.6)).toBe(true);
  });
});

describe("proposal", () => {
  it("mean of the top-k candidates moves towards the domain that lowers the loss", () => {
    // True loss = 3 − 2·w0 (domain 0 is what the target needs).
    const prior = [1, 1, 1, 1];
    const x = sampleProxyMixtures(prior, 64, 5);
    const y = x.map((r) => 3 - 2 * r[0]!);
    for (const kind of ["linear", "gbdt"] as const) {
      const m = fitMixtureModel(kind, x, y);
      const w = proposeMixture(m, prior, 9, { candidates: 5000, topK: 50 });
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      expect(w[0]).toBeGreaterThan(0.8);
      expect(proposeMixture(m, prior, 9, { candidates: 5000, topK: 50 })).toEqual(w);
    }
    expect(sampleCandidates(prior, 10, 1)).toHaveLength(10);
  });
  it("sweep helper: plans named proxy runs and proposes from their results", () => {
    const domains = [
      { name: "web", size: 600 },
      { name: "code", size: 300 },
      { name: "math", size: 100 },
    ];
    const plan = planProxySweep(domains, { runs: 48, seed: 2 });
    expect(plan.runs).toHaveLength(48);
    expect(planProxySweep(domains, { runs: 48, seed: 2 })).toEqual(plan);
    expect(Object.keys(plan.runs[0]!.weights)).toEqual(["web", "code", "math"]);
    // Loss is lowest with a balanced code/math share: (w_code − 0.4)² + (w_math − 0.3)².
    const results = plan.runs.map((r) => ({ weights: r.weights, loss: 2 + (r.weights.code! - 0.4) ** 2 + (r.weights.math! - 0.3) ** 2 }));
    const out = proposeFromSweep(domains, results, { seed: 2, model: "linear", candidates: 5000, topK: 50 });
    expect(out.vector.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // A bowl is not linear: the baseline cannot rank it, the trees can.
    expect(out.fitSpearman).toBeLessThan(0.5);
    const g = proposeFromSweep(domains, results, { seed: 2, candidates: 5000, topK: 50 });
    expect(g.fitSpearman).toBeGreaterThan(0.9);
    expect(g.weights.code).toBeGreaterThan(0.25);
    expect(g.weights.math).toBeGreaterThan(0.15);
  });
});
