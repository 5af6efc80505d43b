/**
 * Real generated text for the simulated learner's domains, so that what a strategy is told
 * about a domain (`DomainInfo.uniqueClusters`, `compressRatio`) comes from the real
 * estimators (src/sources/near-dup.ts, compress.ts) on text of that kind — not from
 * hand-set numbers that no estimator ever produced.
 *
 * - clean: distinct prose-like documents (a ~3,000-word syllable vocabulary, Zipf-like);
 * - noise: base64 of random bytes;
 * - duplicate: `uniqueClusters` source documents copied with 2 % character edits, in a
 *   seeded random order.
 * A deterministic sample of `SAMPLE` documents of the split is made (only those), as the
 * server's domain statistics examine an evenly spaced sample of the split.
 */
import { compressRatio } from "../../src/sources/compress.js";
import { estimateClusters, nearDupClusters } from "../../src/sources/near-dup.js";
import { makeRng } from "../../strategies/util/rng.js";

const SAMPLE = 1000;
const SYL = "ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu".split(" ");
const VOCAB = Array.from({ length: 3000 }, (_, i) => {
  const r = makeRng(i, 17);
  return Array.from({ length: 1 + Math.floor(r() * 3) }, () => SYL[Math.floor(r() * SYL.length)]).join("");
});

function prose(seed: number, words = 200): string {
  const r = makeRng(seed, 23);
  return Array.from({ length: words }, () => VOCAB[Math.floor(VOCAB.length * Math.pow(r(), 2))]).join(" ");
}

/** Character edits at `rate` (substitute, delete, insert in equal parts), like bench/learning's near-duplicates. */
export function edited(t: string, rate: number, seed: number): string {
  const r = makeRng(seed, 31);
  const a = "abcdefghijklmnopqrstuvwxyz ,.";
  let o = "";
  for (const ch of t) {
    const x = r();
    if (x < rate / 3) o += a[Math.floor(r() * a.length)];
    else if (x < (2 * rate) / 3) continue;
    else if (x < rate) o += ch + a[Math.floor(r() * a.length)];
    else o += ch;
  }
  return o;
}

function base64Noise(seed: number): string {
  const r = makeRng(seed, 41);
  const bytes = Buffer.alloc(900);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  return bytes.toString("base64");
}

/** The sample of a domain's train split the estimators see. */
export function sampleTexts(kind: "clean" | "noise" | "duplicate", trainSamples: number, uniqueClusters: number): string[] {
  const n = Math.min(SAMPLE, trainSamples);
  return Array.from({ length: n }, (_, k) => {
    const id = Math.floor((k * trainSamples) / n);
    if (kind === "noise") return base64Noise(id);
    if (kind === "clean") return prose(id);
    // Copies in a random order: document `id` is a copy of a source drawn by hash.
    const src = Math.floor(makeRng(id, 53)() * uniqueClusters);
    return edited(prose(1_000_000 + src), 0.02, id);
  });
}

const cache = new Map<string, { uniqueClusters: number; compressRatio: number }>();

/** The statistics the server would measure for a domain of this kind and size. */
export function measuredStats(kind: "clean" | "noise" | "duplicate", trainSamples: number, uniqueClusters: number): { uniqueClusters: number; compressRatio: number } {
  const key = `${kind}/${trainSamples}/${uniqueClusters}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const texts = sampleTexts(kind, trainSamples, uniqueClusters);
  const r = nearDupClusters(texts);
  const out = { uniqueClusters: Math.max(1, estimateClusters(r, trainSamples)), compressRatio: compressRatio(texts) };
  cache.set(key, out);
  return out;
}
