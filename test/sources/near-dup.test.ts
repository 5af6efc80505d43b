import { describe, expect, it } from "vitest";
import { minhashSignature, nearDupClusters, signatureSimilarity } from "../../src/sources/near-dup.js";
import { makeRng } from "../../strategies/util/rng.js";

const WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega river stone cloud lamp forest window engine paper".split(" ");

/** A deterministic pseudo-random sentence of `n` words. */
function text(seed: number, n = 60): string {
  const r = makeRng(seed, 99);
  return Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]).join(" ");
}

describe("nearDupClusters", () => {
  it("exact duplicates form one cluster", () => {
    const t = text(1);
    const res = nearDupClusters([t, t, t, t]);
    expect(res.clusters).toBe(1);
    expect(res.singletons).toBe(0);
  });

  it("near-duplicates (one word changed) cluster together; distinct texts do not", () => {
    const a = text(1);
    const a2 = a.replace(/^(\S+)/, "CHANGED");
    const b = text(2);
    const c = text(3);
    expect(signatureSimilarity(minhashSignature(a, 64), minhashSignature(a2, 64))).toBeGreaterThan(0.8);
    const res = nearDupClusters([a, b, a2, c]);
    expect(res.clusters).toBe(3);
    expect(res.singletons).toBe(2);
  });

  it("distinct random texts are all singletons", () => {
    const docs = Array.from({ length: 300 }, (_, i) => text(1000 + i));
    const res = nearDupClusters(docs);
    expect(res.clusters).toBe(300);
  });

  it("boilerplate: 10 templates with small edits give about 10 clusters", () => {
    const templates = Array.from({ length: 10 }, (_, i) => text(500 + i, 80));
    const docs = Array.from({ length: 400 }, (_, i) => `${templates[i % 10]} page ${i}`);
    const res = nearDupClusters(docs);
    expect(res.clusters).toBe(10);
  });

  it("samples at most maxDocs and extrapolates singletons", () => {
    const docs = Array.from({ length: 1000 }, (_, i) => text(i, 30));
    const res = nearDupClusters(docs, { maxDocs: 100 });
    expect(res.sampled).toBe(100);
    expect(res.clusters).toBe(100);
    expect(res.estimatedClusters).toBe(1000);
    const dup = Array.from({ length: 1000 }, (_, i) => text(i % 7, 30));
    expect(nearDupClusters(dup, { maxDocs: 100 }).estimatedClusters).toBe(7);
  });

  it("is deterministic", () => {
    const docs = Array.from({ length: 200 }, (_, i) => text(i % 37));
    expect(nearDupClusters(docs)).toEqual(nearDupClusters(docs));
  });
});
