/**
 * Carved holdouts: probe documents taken out of a train split together with their
 * near-duplicates, so a probe's loss can only fall by learning, not by memorising a copy.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runConfig } from "../../src/config/schema.js";
import { loadDomains } from "../../src/runs/domains.js";
import { carveHoldout, keptIndex } from "../../src/sources/holdout.js";
import { sharedDuplicateFraction } from "../../src/sources/near-dup.js";
import { RunRegistry } from "../../src/runs/registry.js";
import { serverConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/util/log.js";
import { startServer, tmpDir } from "../helpers/fixtures.js";

/** Deterministic pseudo-random lowercase text. */
function randomText(seed: number, n: number): string {
  let x = seed * 2654435761 + 1;
  let s = "";
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6b43a9b5) >>> 0;
    s += String.fromCharCode(97 + (x % 26));
    if (x % 7 === 0) s += " ";
  }
  return s;
}

/** A near-duplicate: every 40th character changed (estimated Jaccard of 5-shingles ≈ 0.7). */
function mutate(text: string, seed: number): string {
  const c = [...text];
  for (let i = seed % 40; i < c.length; i += 40) c[i] = c[i] === "z" ? "y" : "z";
  return c.join("");
}

/**
 * 120 clusters of 3 near-duplicates each (documents shuffled), plus 60 copies of one
 * boilerplate text. `cluster[i]` is document i's ground-truth cluster (-1: boilerplate).
 */
function corpus(): { texts: string[]; cluster: number[] } {
  const docs: { text: string; cluster: number }[] = [];
  for (let c = 0; c < 120; c++) {
    const base = randomText(c + 1, 600);
    docs.push({ text: base, cluster: c }, { text: mutate(base, c), cluster: c }, { text: mutate(base, c + 13), cluster: c });
  }
  const boiler = randomText(9999, 600);
  for (let i = 0; i < 60; i++) docs.push({ text: boiler, cluster: -1 });
  // A fixed shuffle so clusters are spread over the split.
  for (let i = docs.length - 1; i > 0; i--) {
    const j = (i * 7919 + 17) % (i + 1);
    [docs[i], docs[j]] = [docs[j]!, docs[i]!];
  }
  return { texts: docs.map((d) => d.text), cluster: docs.map((d) => d.cluster) };
}

describe("carveHoldout", () => {
  const { texts, cluster } = corpus();
  const n = texts.length; // 420

  it("holds out every probe's whole near-duplicate cluster, within the budget, never boilerplate", () => {
    const h = carveHoldout(n, (i) => texts[i]!, { probes: 6, key: 42 });
    expect(h.probes).toHaveLength(6);
    const out = new Set(h.excluded);
    for (const p of h.probes) {
      expect(cluster[p]).toBeGreaterThanOrEqual(0); // a 60-copy boilerplate cluster is far over the 5 % budget
      const mates = cluster.flatMap((c, i) => (c === cluster[p] ? [i] : []));
      expect(mates).toHaveLength(3);
      for (const m of mates) expect(out.has(m), `mate ${m} of probe ${p}`).toBe(true);
    }
    // Nothing else: exactly the probes' clusters (6 × 3), which fits the budget of 21.
    expect(h.excluded).toHaveLength(18);
    expect(h.excluded).toEqual([...h.excluded].sort((a, b) => a - b));
    expect(new Set(h.probes.map((p) => cluster[p])).size).toBe(6); // no two probes from one cluster
  });

  it("is deterministic, keyed, and stops at the budget", () => {
    const a = carveHoldout(n, (i) => texts[i]!, { probes: 6, key: 42 });
    expect(carveHoldout(n, (i) => texts[i]!, { probes: 6, key: 42 })).toEqual(a);
    expect(carveHoldout(n, (i) => texts[i]!, { probes: 6, key: 43 }).probes).not.toEqual(a.probes);
    // 2 % of 420 = 8 documents: only two 3-document clusters fit.
    const small = carveHoldout(n, (i) => texts[i]!, { probes: 6, key: 42, maxFraction: 0.02 });
    expect(small.probes).toHaveLength(2);
    expect(small.excluded).toHaveLength(6);
  });

  it("a split that is one big duplicate cluster gets no probes; a tiny split is not carved", () => {
    const same = Array.from({ length: 400 }, () => "the same boilerplate notice, repeated in every document of the split");
    expect(carveHoldout(same.length, (i) => same[i]!, { probes: 8, key: 1 })).toEqual({ probes: [], excluded: [] });
    expect(carveHoldout(10, (i) => texts[i]!, { probes: 8, key: 1 })).toEqual({ probes: [], excluded: [] });
  });
});

describe("keptIndex", () => {
  it("maps view indices to the indices not excluded (against brute force)", () => {
    for (const excluded of [[], [0], [3, 4, 5], [0, 2, 9, 10, 11, 19]]) {
      const kept = Array.from({ length: 20 }, (_, i) => i).filter((i) => !excluded.includes(i));
      expect(kept.map((_, v) => keptIndex(excluded, v))).toEqual(kept);
    }
  });
});

describe("runs with a carved holdout", () => {
  const dir = tmpDir("mixflow-holdout-");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { texts, cluster } = corpus();
  fs.writeFileSync(path.join(dir, "dup.jsonl"), texts.map((t, i) => JSON.stringify({ text: `${t} #${i}` })).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, "other.jsonl"), texts.map((t, i) => JSON.stringify({ text: `${t.slice(0, 300)} other ${i}` })).join("\n") + "\n");
  const domains = (holdout: "auto" | "off") => [
    { name: "dup", train: { format: "jsonl", paths: ["dup.jsonl"] }, holdout },
    { name: "other", train: { format: "jsonl", paths: ["other.jsonl"] } },
  ];
  const cfg = (strategy: string, holdout: "auto" | "off" = "auto") =>
    runConfig.parse({ id: "h", batchSize: 8, evalProbes: 4, strategy: { name: strategy }, domains: domains(holdout) });
  const load = (c: ReturnType<typeof cfg>) => loadDomains(c, { cacheDir: path.join(dir, "cache"), baseDir: dir });
  /** The document number a served text carries (`#i`). */
  const docOf = (text: string): number => Number(/#(\d+)$/.exec(text)![1]);

  it("only under a strategy that uses probes, only without an eval split, and not when off", () => {
    const carved = load(cfg("mixflow"));
    expect(carved[0]!.eval?.size).toBe(4);
    expect(carved[0]!.info.evalSamples).toBe(4);
    expect(carved[0]!.info.heldOutSamples).toBe(12);
    expect(carved[0]!.train.size).toBe(texts.length - 12);
    expect(carved[0]!.info.trainSamples).toBe(texts.length - 12);
    for (const [c] of [[cfg("static")], [cfg("mixflow", "off")]] as const) {
      const plain = load(c);
      expect(plain[0]!.eval).toBeNull();
      expect(plain[0]!.train.size).toBe(texts.length);
      expect(plain[0]!.info.heldOutSamples).toBe(0);
    }
  });

  it("no training sample shares a near-duplicate cluster with a probe", () => {
    const [dup] = load(cfg("mixflow"));
    const probeClusters = new Set(Array.from({ length: dup!.eval!.size }, (_, i) => cluster[docOf(dup!.eval!.payload(i).toString("utf8"))]));
    expect(probeClusters.size).toBe(4);
    const trained = Array.from({ length: dup!.train.size }, (_, i) => cluster[docOf(dup!.train.payload(i).toString("utf8"))]);
    expect(trained).toHaveLength(texts.length - 12);
    for (const c of trained) expect(probeClusters.has(c)).toBe(false);
  });

  it("a live run serves the carved probes on eval steps and never trains on them", async () => {
    const s = await startServer(dir, [{ ...cfg("mixflow"), id: "live" }]);
    try {
      let probes: string[] = [];
      const served: string[] = [];
      for (let step = 0; step < 40; step++) {
        const b = await s.client.nextBatch("live", step, 0, 1);
        for (let i = 0; i < b.slots; i++) if (b.slotDomains[i] === 0) served.push(b.text!.at(i));
        if (b.evalRequested) probes = b.probes.filter((p) => p.domain === 0).flatMap((p) => Array.from({ length: p.sampleIndices.length }, (_, i) => p.text!.at(i)));
        await s.client.reportSignals({ runId: "live", step, rank: 0, worldSize: 1, sampleLosses: new Float32Array(b.slots).fill(2) });
      }
      expect(probes).toHaveLength(4);
      expect(served.length).toBeGreaterThan(50);
      const probeClusters = new Set(probes.map((t) => cluster[docOf(t)]));
      for (const t of served) expect(probeClusters.has(cluster[docOf(t)])).toBe(false);
    } finally {
      await s.stop();
    }
  });
});

describe("eval splits that share duplicates with training", () => {
  const fresh = Array.from({ length: 40 }, (_, i) => randomText(5000 + i, 500));
  const pool = Array.from({ length: 200 }, (_, i) => randomText(i + 1, 500));

  it("sharedDuplicateFraction counts probes with a near-duplicate in the pool", () => {
    expect(sharedDuplicateFraction(fresh, pool)).toBe(0);
    expect(sharedDuplicateFraction(pool.slice(0, 40).map((t, i) => mutate(t, i)), pool)).toBe(1);
    expect(sharedDuplicateFraction([...fresh.slice(0, 30), ...pool.slice(50, 60).map((t, i) => mutate(t, i))], pool)).toBe(0.25);
  });

  it("the registry warns about such a domain by name under a probe-using strategy, not about a clean one", async () => {
    const dir = tmpDir("mixflow-evaldup-");
    try {
      const write = (file: string, texts: string[]) => fs.writeFileSync(path.join(dir, file), texts.map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
      write("train.jsonl", pool);
      write("copied.jsonl", pool.slice(0, 30).map((t, i) => mutate(t, i)));
      write("clean.jsonl", fresh);
      write("boiler.jsonl", Array.from({ length: 30 }, (_, i) => `${pool[0]} ${i}`));
      write("boiler-train.jsonl", Array.from({ length: 200 }, (_, i) => `${pool[0]} ${100 + i}`));
      const run = (strategy: string, holdout: "auto" | "off") => ({
        id: `r-${strategy}-${holdout}`,
        batchSize: 8,
        strategy: { name: strategy },
        domains: [
          { name: "leaky", train: { format: "jsonl", paths: ["train.jsonl"] }, eval: { format: "jsonl", paths: ["copied.jsonl"] }, holdout },
          { name: "tidy", train: { format: "jsonl", paths: ["train.jsonl"] }, eval: { format: "jsonl", paths: ["clean.jsonl"] }, holdout },
          { name: "banner", train: { format: "jsonl", paths: ["boiler-train.jsonl"] }, eval: { format: "jsonl", paths: ["boiler.jsonl"] }, holdout },
        ],
      });
      const lines: string[] = [];
      const config = serverConfig.parse({ dataDir: "state", journal: { durability: "none" }, runs: [run("mixflow", "off"), run("static", "off"), run("mixflow", "auto")] });
      const reg = await RunRegistry.open({ config, baseDir: dir, logger: createLogger("warn", (l) => lines.push(l)) });
      await reg.shutdown();
      const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "eval split shares near-duplicates with training");
      // holdout "off": both copied splits; "auto": the leaky one probes only documents whose copies
      // left training (test/sources/disjoint-probes.test.ts), the banner's copies are too many to.
      expect(warnings.map((w) => [w.run, w.domain, w.share])).toEqual([
        ["r-mixflow-off", "leaky", 1],
        ["r-mixflow-off", "banner", 1],
        ["r-mixflow-auto", "banner", 1],
      ]);
      expect(String(warnings[0]!.detail)).toMatch(/100% of sampled eval documents have a near-duplicate in the train split/);
      expect(String(warnings[2]!.detail)).toMatch(/every one has more copies than may leave training/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
