import { describe, expect, it } from "vitest";
import { Apportioner } from "../../src/sampling/apportion.js";

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function normalise(w: number[]): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

describe("Apportioner", () => {
  it("per-step counts are non-negative integers summing to B and track targets within 1.5 over 100k steps (static weights)", () => {
    const weights = normalise([5, 3, 1, 0.5, 0.25, 0.125, 7, 2]);
    const b = 64;
    const a = new Apportioner(weights.length, b);
    a.addVersion({ fromStep: 0, weights });
    const counts = a.newCounts();
    const cum = new Float64Array(weights.length);
    let maxErr = 0;
    for (let s = 0; s < 100_000; s++) {
      a.countsAt(s, counts);
      let total = 0;
      for (let i = 0; i < counts.length; i++) {
        const d = counts.domains[i]!;
        if (counts.cursors[i] !== cum[d]) expect.fail(`step ${s}: cursor of domain ${d} is ${counts.cursors[i]}, walked ${cum[d]}`);
        cum[d]! += counts.counts[i]!;
        total += counts.counts[i]!;
      }
      if (total !== b) expect.fail(`step ${s}: counts sum to ${total}, not ${b}`);
      for (let d = 0; d < weights.length; d++) maxErr = Math.max(maxErr, Math.abs(cum[d]! - b * weights[d]! * (s + 1)));
    }
    // Measured 1.01 here; the bound is 0.5 per tree level damped by the shares below
    // (docs/sampling.md explains why strict ±1 and random access conflict).
    expect(maxErr).toBeLessThan(1.5);
  });

  it("stays monotone and within 2.5 of the cumulative target under frequent random versions", () => {
    const rnd = xorshift(3);
    const k = 22;
    const b = 48;
    const a = new Apportioner(k, b);
    const versions: { from: number; w: number[] }[] = [];
    for (let f = 0; f < 20_000; f += 1 + Math.floor(rnd() * 60)) {
      const w = normalise(Array.from({ length: k }, () => (rnd() < 0.3 ? rnd() ** 3 * 0.01 : rnd())));
      versions.push({ from: f, w });
      a.addVersion({ fromStep: f, weights: w });
    }
    const counts = a.newCounts();
    const cum = new Float64Array(k);
    const target = new Float64Array(k);
    let vi = 0;
    let maxErr = 0;
    for (let s = 0; s < 20_000; s++) {
      while (vi + 1 < versions.length && versions[vi + 1]!.from <= s) vi++;
      a.countsAt(s, counts);
      let total = 0;
      for (let i = 0; i < counts.length; i++) {
        if (!(counts.counts[i]! > 0)) expect.fail(`step ${s}: non-positive count`);
        cum[counts.domains[i]!]! += counts.counts[i]!;
        total += counts.counts[i]!;
      }
      if (total !== b) expect.fail(`step ${s}: counts sum to ${total}, not ${b}`);
      for (let d = 0; d < k; d++) {
        target[d]! += b * versions[vi]!.w[d]!;
        maxErr = Math.max(maxErr, Math.abs(cum[d]! - target[d]!));
      }
    }
    expect(maxErr).toBeLessThan(2.5);
  });

  it("cumulative(s) equals the sum of per-step counts (random access agrees with the walk)", () => {
    const a = new Apportioner(5, 10);
    a.addVersion({ fromStep: 0, weights: [0.1, 0.2, 0.3, 0.15, 0.25] });
    a.addVersion({ fromStep: 37, weights: [0.5, 0, 0, 0.25, 0.25] });
    const counts = a.newCounts();
    const cum = new Float64Array(5);
    for (let s = 0; s < 100; s++) {
      a.countsAt(s, counts);
      for (let i = 0; i < counts.length; i++) cum[counts.domains[i]!]! += counts.counts[i]!;
    }
    expect(Array.from(a.cumulative(100))).toEqual(Array.from(cum));
  });

  it("a zero-weight domain gets nothing once its version is in force", () => {
    const a = new Apportioner(3, 16);
    a.addVersion({ fromStep: 0, weights: [1 / 3, 1 / 3, 1 / 3] });
    a.addVersion({ fromStep: 10, weights: [0.5, 0, 0.5] });
    const before = a.cumulative(11)[1]!;
    expect(a.cumulative(5000)[1]).toBeLessThanOrEqual(before + 1);
  });

  it("random access to step 10^6 costs about what step 10 costs", () => {
    const k = 22;
    const a = new Apportioner(k, 1024);
    a.addVersion({ fromStep: 0, weights: normalise(Array.from({ length: k }, (_, i) => i + 1)) });
    const counts = a.newCounts();
    const time = (step: number): number => {
      const t0 = performance.now();
      for (let i = 0; i < 2000; i++) a.countsAt(step + (i % 7), counts);
      return performance.now() - t0;
    };
    time(10);
    time(1_000_000); // warm up both paths
    const small = Math.min(time(10), time(10), time(10));
    const large = Math.min(time(1_000_000), time(1_000_000), time(1_000_000));
    // Same work whatever the step: allow a generous factor for a noisy shared machine.
    expect(large / small).toBeLessThan(3);
  });
});
