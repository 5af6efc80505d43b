/**
 * Shuffled probes (src/sources/shuffled.ts): the same symbols in a keyed order — code points
 * of a text (so UTF-8 stays valid), tokens of a window — deterministic, never touching the
 * source they shuffle; and the eval probes of a run with structure probes: odd eval steps
 * carry them, even steps the probes in order (src/runs/probes.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runConfig } from "../../src/config/schema.js";
import { loadDomains } from "../../src/runs/domains.js";
import { EvalProbes, evalStepFor } from "../../src/runs/probes.js";
import { ShuffledSource, shuffleCodePoints, shuffleItems } from "../../src/sources/shuffled.js";
import type { Source } from "../../src/sources/source.js";
import { tmpDir } from "../helpers/fixtures.js";

const sorted = (s: string): string => Array.from(s).sort().join("");

describe("shuffleCodePoints / shuffleItems", () => {
  it("keep the multiset of symbols, change the order, are deterministic per seed, and keep UTF-8 whole", () => {
    const text = "the quiet river carries a bright letter — 静かな川が明るい手紙を運ぶ 🚣 over old stone bridges";
    const a = shuffleCodePoints(text, 1);
    expect(sorted(a)).toBe(sorted(text));
    expect(a).not.toBe(text);
    expect(shuffleCodePoints(text, 1)).toBe(a);
    expect(shuffleCodePoints(text, 2)).not.toBe(a);
    expect(Buffer.from(a, "utf8").toString("utf8")).toBe(a); // no broken surrogate pairs or sequences
    expect(Array.from(a)).toContain("🚣");
  });

  it("shuffle the uint16 items of a window in place, only inside the window", () => {
    const buf = Buffer.alloc(2 * 40);
    for (let i = 0; i < 40; i++) buf.writeUInt16LE(1000 + i, 2 * i);
    const before = Buffer.from(buf);
    shuffleItems(buf, 2 * 5, 2 * 30, 2, 9);
    const items = (b: Buffer) => Array.from({ length: 40 }, (_, i) => b.readUInt16LE(2 * i));
    const after = items(buf);
    expect(after.slice(0, 5)).toEqual(items(before).slice(0, 5));
    expect(after.slice(35)).toEqual(items(before).slice(35));
    expect([...after.slice(5, 35)].sort()).toEqual(items(before).slice(5, 35));
    expect(after.slice(5, 35)).not.toEqual(items(before).slice(5, 35));
  });
});

describe("ShuffledSource", () => {
  it("serves each sample's symbols shuffled, keyed by (key, sample), and leaves the inner source's bytes alone", () => {
    const texts = ["alpha beta gamma delta", "one two three four five", "x"];
    const inner: Source = {
      kind: "text",
      size: texts.length,
      sizeMeasure: 60,
      dtype: null,
      windowTokens: null,
      difficulty: null,
      payload: (i) => Buffer.from(texts[i]!, "utf8"),
      copyWindow: () => 0,
      textSample: () => texts,
      close: () => undefined,
    };
    const s = new ShuffledSource(inner, 5);
    const got = texts.map((_, i) => s.payload(i).toString("utf8"));
    got.forEach((g, i) => expect(sorted(g)).toBe(sorted(texts[i]!)));
    expect(got[0]).not.toBe(texts[0]);
    expect(got[1]).not.toBe(texts[1]);
    expect(new ShuffledSource(inner, 5).payload(0).toString("utf8")).toBe(got[0]);
    expect(new ShuffledSource(inner, 6).payload(0).toString("utf8")).not.toBe(got[0]);
    expect(inner.payload(0).toString("utf8")).toBe(texts[0]);
  });
});

describe("eval probes of a run with structure probes", () => {
  const dir = tmpDir("mixflow-shuffled-");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const doc = (i: number) => `document ${i}: the quiet river carries a bright letter over old stone bridges at night`;
  fs.writeFileSync(path.join(dir, "train.jsonl"), Array.from({ length: 50 }, (_, i) => JSON.stringify({ text: doc(i) })).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, "val.jsonl"), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: doc(1000 + i) })).join("\n") + "\n");
  const cfg = runConfig.parse({
    id: "s",
    batchSize: 8,
    evalProbes: 4,
    strategy: { name: "static" },
    domains: [{ name: "a", train: { format: "jsonl", paths: ["train.jsonl"] }, eval: { format: "jsonl", paths: ["val.jsonl"] } }],
  });
  const texts = (p: ReturnType<EvalProbes["probesAt"]>) => {
    const pl = p[0]!.slice.payload;
    if (pl.kind !== "text") throw new Error("text payload expected");
    const all = Buffer.alloc(pl.data.length);
    pl.data.write(all, 0);
    const off = (i: number) => Number(pl.offsets.readBigUInt64LE(8 * i));
    return Array.from({ length: 4 }, (_, i) => all.subarray(off(i), off(i + 1)).toString("utf8"));
  };

  it("odd eval steps carry the same documents shuffled, even steps in order; without structure every step is in order", () => {
    const domains = loadDomains(cfg, { cacheDir: path.join(dir, "cache"), baseDir: dir });
    const on = new EvalProbes(cfg, domains, true);
    const even = texts(on.probesAt(4));
    const odd = texts(on.probesAt(5));
    expect(Array.from(on.probesAt(5)[0]!.slice.samples)).toEqual(Array.from(on.probesAt(4)[0]!.slice.samples));
    odd.forEach((t, i) => {
      expect(sorted(t)).toBe(sorted(even[i]!));
      expect(t).not.toBe(even[i]);
    });
    for (const t of even) expect(t).toMatch(/^document 10\d\d: the quiet river/);
    expect(texts(new EvalProbes(cfg, domains, false).probesAt(5))).toEqual(even);
  });

  it("a pushed eval step keeps the parity asked for only when told to", () => {
    expect(evalStepFor(10, 3, 5, true)).toBe(13); // not pushed
    expect(evalStepFor(10, 1, 20, true)).toBe(21); // asked 11 (odd), pushed to 20 → 21
    expect(evalStepFor(10, 2, 20, true)).toBe(20); // asked 12 (even), 20 is even
    expect(evalStepFor(10, 1, 20, false)).toBe(20);
  });
});
