import { describe, expect, it } from "vitest";
import { Permutation } from "../../src/sampling/permutation.js";

describe("Permutation", () => {
  it.each([1, 2, 3, 7, 64, 1000, 4099])("is a bijection of [0, %i)", (n) => {
    const p = new Permutation(n, 42);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = p.at(i);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(n);
      seen[x]!++;
    }
    expect(seen.every((c) => c === 1)).toBe(true);
  });

  it("depends on the key and is stable for a key", () => {
    const a = Array.from({ length: 100 }, (_, i) => new Permutation(100, 1).at(i));
    const a2 = Array.from({ length: 100 }, (_, i) => new Permutation(100, 1).at(i));
    const b = Array.from({ length: 100 }, (_, i) => new Permutation(100, 2).at(i));
    expect(a).toEqual(a2);
    expect(a).not.toEqual(b);
  });

  it("shuffles: positions are not near their images on average", () => {
    const n = 10_000;
    const p = new Permutation(n, 9);
    let fixed = 0;
    let displacement = 0;
    for (let i = 0; i < n; i++) {
      const x = p.at(i);
      if (x === i) fixed++;
      displacement += Math.abs(x - i);
    }
    expect(fixed).toBeLessThan(10);
    // A uniform random permutation has mean |x - i| ≈ n/3.
    expect(displacement / n).toBeGreaterThan(n / 4);
  });

  it("handles domains far beyond memory without materialising them", () => {
    const p = new Permutation(2 ** 40 + 3, 5);
    const xs = [0, 1, 2, 2 ** 39, 2 ** 40 + 2].map((i) => p.at(i));
    for (const x of xs) {
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeLessThan(2 ** 40 + 3);
    }
    expect(new Set(xs).size).toBe(xs.length);
  });
});
