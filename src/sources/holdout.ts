/**
 * A cluster-disjoint holdout carved out of a domain's train split, for domains that have no
 * eval split but run under a strategy that measures learnability on probe documents.
 *
 * Why cluster-disjoint: a probe whose near-duplicates stay in training measures
 * memorisation, not learning — its loss falls as soon as the duplicates are seen, and a
 * strategy rewarded by that "progress" feeds the duplicates. So every train document that
 * near-duplicates a probe leaves the training split together with the probe.
 *
 * Method (pure given the texts, hence deterministic):
 * 1. Candidates: the first `4 × probes` documents of a keyed permutation of the split
 *    (keyed by the domain's name, not the run seed, so runs with different seeds probe the
 *    same documents).
 * 2. One pass over every document of the split: its "mates" among the candidates (each
 *    candidate is its own mate) by the near-duplicate test of src/sources/probe-mates.ts
 *    (shingles at `threshold`, with an edit-distance check below it, so copies with 5–10 %
 *    of their characters edited are mates too; the shingle test alone missed them).
 * 3. Candidates are accepted in order while the union of accepted candidates' mates stays
 *    within `maxFraction` of the split, until `probes` are accepted. A candidate from a big
 *    duplicate cluster (boilerplate) is skipped: holding it out would cost too much
 *    training data, and its loss would say little about the domain's unique content. A
 *    domain that is one big cluster gets no probes.
 *
 * Mates are direct near-duplicates of a probe (no transitive closure): a document similar
 * only to a mate stays in training.
 */
import { Permutation } from "../sampling/index.js";
import { progress } from "../util/progress.js";
import { ProbeMates } from "./probe-mates.js";

export interface HoldoutOptions {
  /** Probe documents wanted. */
  readonly probes: number;
  /** Permutation key for the candidates (e.g. a hash of the domain name). */
  readonly key: number;
  /** Largest fraction of the split that may leave training (default 0.05). */
  readonly maxFraction?: number;
  /** Estimated Jaccard similarity at or above which a document is a probe's mate (default 0.5). */
  readonly threshold?: number;
  /** Characters of each document compared (default 4,000). */
  readonly maxChars?: number;
  /** Label for progress on a terminal. */
  readonly label?: string;
}

export interface Holdout {
  /** Probe documents (indices into the split), in the order chosen. */
  readonly probes: number[];
  /** Every document leaving training (probes and their mates), sorted ascending. */
  readonly excluded: number[];
}

/** Splits smaller than this are not carved: too little to spare. */
export const MIN_CARVE_DOCS = 32;

/** Carve a holdout from `size` documents whose texts `textOf(i)` returns. */
export function carveHoldout(size: number, textOf: (i: number) => string, opts: HoldoutOptions): Holdout {
  const want = Math.max(0, Math.floor(opts.probes));
  if (size < MIN_CARVE_DOCS || want === 0) return { probes: [], excluded: [] };
  const maxFraction = opts.maxFraction ?? 0.05;
  const threshold = opts.threshold ?? 0.5;

  const perm = new Permutation(size, opts.key);
  const candidates = Array.from({ length: Math.min(size, 4 * want) }, (_, j) => perm.at(j));
  const index = new ProbeMates(candidates.map((c) => textOf(c)), { threshold, maxChars: opts.maxChars }); // item c = candidates[c]

  const mates: number[][] = candidates.map(() => []);
  const prog = progress(`holdout ${opts.label ?? ""}`.trim());
  for (let i = 0; i < size; i++) {
    for (const c of index.of(textOf(i))) mates[c]!.push(i);
    if ((i & 1023) === 0) prog.update(i, size);
  }
  prog.done();

  const budget = Math.floor(maxFraction * size);
  const out = new Set<number>();
  const probes: number[] = [];
  for (let c = 0; c < candidates.length && probes.length < want; c++) {
    if (out.has(candidates[c]!)) continue; // a mate of an accepted probe: already held out, not a new probe
    const added = mates[c]!.filter((i) => !out.has(i));
    if (out.size + added.length > budget) continue;
    for (const i of added) out.add(i);
    out.add(candidates[c]!);
    probes.push(candidates[c]!);
  }
  return { probes, excluded: [...out].sort((a, b) => a - b) };
}

/**
 * The `i`-th index of [0, n) that is not in `excluded` (sorted ascending, distinct):
 * the smallest j with excluded[j] - j > i gives i + j. O(log |excluded|).
 */
export function keptIndex(excluded: readonly number[], i: number): number {
  let lo = 0;
  let hi = excluded.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (excluded[mid]! - mid <= i) lo = mid + 1;
    else hi = mid;
  }
  return i + lo;
}
