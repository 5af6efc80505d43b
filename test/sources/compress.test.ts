import { describe, expect, it } from "vitest";
import { compressRatio, compressRatioBytes } from "../../src/sources/compress.js";
import { makeRng } from "../../strategies/util/rng.js";

/** Deterministic pseudo-random base64 text (6 bits of entropy per character). */
function randomBase64(n: number, seed: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const r = makeRng(seed);
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * 64)];
  return s;
}

describe("compressRatio", () => {
  it("random base64 is near-incompressible (>= 0.74: 6 of 8 bits are entropy)", () => {
    const docs = Array.from({ length: 200 }, (_, i) => randomBase64(500, i));
    const r = compressRatio(docs);
    expect(r).toBeGreaterThanOrEqual(0.74);
    expect(r).toBeLessThan(0.85);
  });

  it("repeated boilerplate compresses to a few percent", () => {
    const line = "Copyright (c) 2024 Example Corp. All rights reserved. Terms of service apply.\n";
    const docs = Array.from({ length: 300 }, () => line.repeat(5));
    expect(compressRatio(docs)).toBeLessThan(0.05);
  });

  it("ordinary prose falls in between", () => {
    const prose = [
      "Data mixing decides how much of each source a model sees during training.",
      "Noise cannot be learned; boilerplate is memorised at once; both waste compute.",
      "A good mixture spends samples where the held-out loss still goes down.",
    ];
    const r = compressRatio(prose);
    expect(r).toBeGreaterThan(0.5);
    expect(r).toBeLessThan(1.05);
  });

  it("is bounded by maxBytes and deterministic", () => {
    const docs = Array.from({ length: 5000 }, (_, i) => randomBase64(400, i));
    const a = compressRatio(docs, { maxBytes: 50_000 });
    expect(compressRatio(docs, { maxBytes: 50_000 })).toBe(a);
    expect(a).toBeGreaterThan(0.74);
  });

  it("empty input means unknown (0)", () => {
    expect(compressRatio([])).toBe(0);
    expect(compressRatioBytes(new Uint8Array(0))).toBe(0);
  });

  it("random bytes are ~1, zeros ~0", () => {
    const r = makeRng(7);
    const bytes = Uint8Array.from({ length: 100_000 }, () => Math.floor(r() * 256));
    expect(compressRatioBytes(bytes)).toBeGreaterThan(0.99);
    expect(compressRatioBytes(new Uint8Array(100_000))).toBeLessThan(0.01);
  });
});
