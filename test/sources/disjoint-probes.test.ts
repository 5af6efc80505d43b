/**
 * Disjoint probes from a user's eval split: an eval document whose copies (exact, or with
 * 2–10 % of their characters edited) are in the train split is a probe only if all those
 * copies leave training; eval documents without copies are preferred; a domain whose copies
 * are too many keeps its split and is reported. Checked against the generator's ground truth
 * (which source document each text was copied from), and end to end through the domain loader.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runConfig } from "../../src/config/schema.js";
import { loadDomains } from "../../src/runs/domains.js";
import { disjointEvalProbes } from "../../src/sources/disjoint-probes.js";
import { ProbeMates } from "../../src/sources/probe-mates.js";
import { makeRng } from "../../strategies/util/rng.js";
import { tmpDir } from "../helpers/fixtures.js";
import { edited } from "../sim/text.js";

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her " +
  "she there been one all we their has would when if more no out so what up its into them time only can could new some these"
).split(" ");

/** Pseudo-prose from a small vocabulary: unrelated documents share many shingles, as in the bench's zoo. */
function prose(r: () => number): string {
  const out: string[] = [];
  for (let s = 0; s < 12; s++) {
    const n = 6 + Math.floor(r() * 9);
    out.push(Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!).join(" ") + ".");
  }
  return out.join(" ");
}

/** `sources` documents × `copies`, edited at `rate`, shuffled; the first `evalDocs` are the eval split. */
function copied(seed: number, sources: number, copies: number, rate: number, evalDocs: number) {
  const r = makeRng(seed);
  const src = Array.from({ length: sources }, () => prose(r));
  const docs = src.flatMap((s, k) => Array.from({ length: copies }, (_, c) => ({ text: rate > 0 ? edited(s, rate, seed * 1e5 + k * 100 + c) : s, source: k })));
  for (let i = docs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [docs[i], docs[j]] = [docs[j]!, docs[i]!];
  }
  return { evalDocs: docs.slice(0, evalDocs), train: docs.slice(evalDocs) };
}

describe("disjointEvalProbes", () => {
  for (const rate of [0, 0.02, 0.05, 0.1]) {
    it(`100 documents × 20 copies at ${rate * 100} % edits: every copy of a probe leaves training, nothing else does`, () => {
      const { evalDocs, train } = copied(7 + rate * 1000, 100, 20, rate, 160);
      const h = disjointEvalProbes(evalDocs.length, (i) => evalDocs[i]!.text, train.length, (j) => train[j]!.text, train.slice(0, 400).map((d) => d.text), { probes: 8, key: 3 });
      expect(h.candidates).toBe(32);
      expect(h.contaminated).toBe(32); // every eval document is a copy
      // The budget (5 % of 1,840 = 92) holds the copies of some sources (~18 each), not eight.
      expect(h.probes.length).toBeGreaterThanOrEqual(4);
      const probeSources = new Set(h.probes.map((p) => evalDocs[p]!.source));
      // Probes from distinct sources (a copy of an accepted probe is skipped when all its copies are out already).
      expect(probeSources.size).toBeGreaterThanOrEqual(h.probes.length - 1);
      const excluded = new Set(h.excluded);
      train.forEach((d, j) => expect(excluded.has(j), `train ${j} (source ${d.source})`).toBe(probeSources.has(d.source)));
      expect(h.excluded.length).toBeLessThanOrEqual(92);
    });
  }

  it("prefers eval documents without copies; a clean split is untouched; deterministic and keyed", () => {
    const { evalDocs, train } = copied(11, 100, 20, 0.05, 40);
    const r = makeRng(99);
    const fresh = Array.from({ length: 40 }, () => prose(r));
    const mixedEval = [...evalDocs.map((d) => d.text), ...fresh];
    const sample = train.slice(0, 400).map((d) => d.text);
    const h = disjointEvalProbes(mixedEval.length, (i) => mixedEval[i]!, train.length, (j) => train[j]!.text, sample, { probes: 8, key: 5 });
    expect(h.probes).toHaveLength(8);
    for (const p of h.probes) expect(p).toBeGreaterThanOrEqual(40); // the fresh ones
    expect(h.excluded).toEqual([]);
    expect(h.contaminated).toBeGreaterThan(0);
    expect(disjointEvalProbes(mixedEval.length, (i) => mixedEval[i]!, train.length, (j) => train[j]!.text, sample, { probes: 8, key: 5 })).toEqual(h);
    expect(disjointEvalProbes(mixedEval.length, (i) => mixedEval[i]!, train.length, (j) => train[j]!.text, sample, { probes: 8, key: 6 }).probes).not.toEqual(h.probes);
    const clean = disjointEvalProbes(fresh.length, (i) => fresh[i]!, train.length, (j) => train[j]!.text, sample, { probes: 8, key: 5 });
    expect(clean.contaminated).toBe(0);
  });

  it("boilerplate copied hundreds of times gets no probe (its copies exceed the budget)", () => {
    const r = makeRng(3);
    const banner = prose(r);
    const train = Array.from({ length: 600 }, (_, i) => `${banner} site ${i}`);
    const evalDocs = Array.from({ length: 40 }, (_, i) => `${banner} site ${1000 + i}`);
    const h = disjointEvalProbes(evalDocs.length, (i) => evalDocs[i]!, train.length, (j) => train[j]!, train.slice(0, 200), { probes: 8, key: 1 });
    expect(h).toEqual({ probes: [], excluded: [], candidates: 32, contaminated: 32 });
  });
});

describe("ProbeMates", () => {
  it("finds copies of the same document edited 10 % each (~19 % apart) that the shingle test alone misses, and no unrelated pseudo-prose", () => {
    const r = makeRng(21);
    const src = Array.from({ length: 60 }, () => prose(r));
    // Probes and train documents are both edited copies, as in a domain of near-duplicates.
    const probes = src.map((s, k) => edited(s, 0.1, 21_000 + k));
    const copies = src.flatMap((s, k) => [1, 2, 3].map((c) => ({ text: edited(s, 0.1, 22_000 + 10 * k + c), source: k })));
    const others = Array.from({ length: 300 }, () => prose(r));
    const shinglesOnly = new ProbeMates(probes, { candidate: 0.5 });
    const full = new ProbeMates(probes, {}, others);
    expect(copies.filter((c) => shinglesOnly.of(c.text).includes(c.source)).length).toBeLessThan(copies.length / 4);
    expect(copies.map((c) => full.of(c.text))).toEqual(copies.map((c) => [c.source]));
    expect(others.filter((o) => full.of(o).length > 0)).toEqual([]);
  });
});

describe("loading a domain whose eval split shares copies with training", () => {
  const dir = tmpDir("mixflow-disjoint-");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { evalDocs, train } = copied(5, 100, 20, 0.02, 160);
  const write = (file: string, docs: { text: string; source: number }[]) =>
    fs.writeFileSync(path.join(dir, file), docs.map((d, i) => JSON.stringify({ text: `${d.text} [${d.source}:${i}]` })).join("\n") + "\n");
  write("train.jsonl", train);
  write("val.jsonl", evalDocs);
  const r = makeRng(77);
  write("fresh.jsonl", Array.from({ length: 60 }, (_, i) => ({ text: prose(r), source: 1000 + i })));
  const cfg = (holdout: "auto" | "off", strategy = "mixflow") =>
    runConfig.parse({
      id: "d",
      batchSize: 8,
      strategy: { name: strategy },
      domains: [
        { name: "copies", train: { format: "jsonl", paths: ["train.jsonl"] }, eval: { format: "jsonl", paths: ["val.jsonl"] }, holdout },
        { name: "tidy", train: { format: "jsonl", paths: ["train.jsonl"] }, eval: { format: "jsonl", paths: ["fresh.jsonl"] }, holdout },
      ],
    });
  const load = (c: ReturnType<typeof cfg>) => loadDomains(c, { cacheDir: path.join(dir, "cache"), baseDir: dir });
  const sourceOf = (t: string): number => Number(/\[(\d+):\d+\]$/.exec(t)![1]);
  const texts = (s: { size: number; payload(i: number): Buffer }) => Array.from({ length: s.size }, (_, i) => s.payload(i).toString("utf8"));

  it("probes only documents whose copies left training; a clean eval split and holdout off are untouched", () => {
    const [copies, tidy] = load(cfg("auto"));
    const probes = texts(copies!.eval!).map(sourceOf);
    expect(probes.length).toBeGreaterThanOrEqual(4);
    expect(probes.length).toBeLessThan(8); // the budget holds the copies of a few sources only
    const trained = texts(copies!.train).map(sourceOf);
    for (const s of trained) expect(probes.includes(s)).toBe(false);
    expect(copies!.info.heldOutSamples).toBe(train.length - trained.length);
    expect(copies!.info.trainSamples).toBe(trained.length);
    expect(copies!.info.evalSamples).toBe(probes.length);
    expect(copies!.evalSharesDuplicates).toBe(0);
    // Probe i is document evalIndexOf(i) of the eval split the user gave (EvalProbe.sample_indices).
    const valLines = fs.readFileSync(path.join(dir, "val.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { text: string }).text);
    expect(texts(copies!.eval!)).toEqual(texts(copies!.eval!).map((_, i) => valLines[copies!.evalIndexOf!(i)]));
    expect(tidy!.evalIndexOf).toBeNull();
    expect(tidy!.eval!.size).toBe(60);
    expect(tidy!.train.size).toBe(train.length);
    for (const c of [cfg("off"), cfg("auto", "static")]) {
      const [plain] = load(c);
      expect(plain!.eval!.size).toBe(160);
      expect(plain!.train.size).toBe(train.length);
    }
    expect(load(cfg("off"))[0]!.evalSharesDuplicates).toBeGreaterThan(0.9);
  });
});
