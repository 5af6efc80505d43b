/**
 * Probes from a user's eval split that memorisation cannot reach: eval documents whose
 * near-duplicates are in the train split take those duplicates out of training, or are not
 * used as probes.
 *
 * Why: a domain's eval split is usually drawn from the same source as its train split, and
 * for a repetitive domain (documents copied 20×, or copied with a few per cent of edits) it
 * shares their copies. Its probe loss then falls as soon as a copy is served, so the probe
 * "learnability" that mixflow weights by is memorisation: on the learning bench's
 * repetition family (zoo.py, eval splits drawn like their train splits) the copy kinds kept
 * 0.027–0.044 of the samples with the indexing-time priors switched off, about their
 * uniform share, where a quality filter serves them nothing (docs/learning.md).
 *
 * Method (pure given the texts, hence deterministic):
 * 1. Candidates: the first `4 × probes` documents of a keyed permutation of the eval split
 *    (keyed by the domain's name, so every seed probes the same documents).
 * 2. One pass over every train document: its mates among the candidates (src/sources/probe-mates.ts,
 *    shingles with an edit-distance check, so 2–10 % edits are found).
 * 3. Candidates with no mate are accepted first, in order; then candidates whose mates still
 *    fit in `maxFraction` of the train split (those mates leave training), in order, until
 *    `probes` are accepted (one whose copies are all out already is skipped: it copies an
 *    accepted probe). A candidate from a big cluster (boilerplate copied hundreds of
 *    times) does not fit: no probe of such a domain can be disjoint, and the caller keeps
 *    the split as it is (the registry warns that its probes measure memorisation).
 */
import { Permutation } from "../sampling/index.js";
import { progress } from "../util/progress.js";
import { ProbeMates, type MateOptions } from "./probe-mates.js";

export interface DisjointOptions {
  /** Probe documents wanted. */
  readonly probes: number;
  /** Permutation key for the candidates (e.g. a hash of the domain name). */
  readonly key: number;
  /** Largest fraction of the train split that may leave training (default 0.05). */
  readonly maxFraction?: number;
  /** The near-duplicate test (src/sources/probe-mates.ts). */
  readonly mates?: MateOptions;
  /** Label for progress on a terminal. */
  readonly label?: string;
}

export interface DisjointProbes {
  /** Accepted probe documents (indices into the eval split), clean ones first. */
  readonly probes: number[];
  /** Train documents leaving training (mates of accepted probes), sorted ascending. */
  readonly excluded: number[];
  /** Candidates examined, and how many of them had a near-duplicate in the train split. */
  readonly candidates: number;
  readonly contaminated: number;
}

/**
 * Choose disjoint probes among `evalSize` eval documents (`evalText(i)`) against `trainSize`
 * train documents (`trainText(j)`); `sample` (train texts) sets the domain's typical edit
 * distance.
 */
export function disjointEvalProbes(
  evalSize: number,
  evalText: (i: number) => string,
  trainSize: number,
  trainText: (j: number) => string,
  sample: readonly string[],
  opts: DisjointOptions,
): DisjointProbes {
  const want = Math.max(0, Math.floor(opts.probes));
  if (evalSize === 0 || want === 0) return { probes: [], excluded: [], candidates: 0, contaminated: 0 };
  const perm = new Permutation(evalSize, opts.key);
  const candidates = Array.from({ length: Math.min(evalSize, 4 * want) }, (_, k) => perm.at(k));
  const index = new ProbeMates(candidates.map((c) => evalText(c)), opts.mates, sample);
  const mates: number[][] = candidates.map(() => []);
  const prog = progress(`disjoint probes ${opts.label ?? ""}`.trim());
  for (let j = 0; j < trainSize; j++) {
    for (const c of index.of(trainText(j))) mates[c]!.push(j);
    if ((j & 1023) === 0) prog.update(j, trainSize);
  }
  prog.done();
  const contaminated = mates.filter((m) => m.length > 0).length;
  const probes: number[] = [];
  for (let c = 0; c < candidates.length && probes.length < want; c++) if (mates[c]!.length === 0) probes.push(candidates[c]!);
  const budget = Math.floor((opts.maxFraction ?? 0.05) * trainSize);
  const out = new Set<number>();
  for (let c = 0; c < candidates.length && probes.length < want; c++) {
    const m = mates[c]!;
    if (m.length === 0) continue;
    const added = m.filter((j) => !out.has(j));
    // Every copy already out: most likely a copy of an accepted probe, which adds no new probe content.
    if (added.length === 0 || out.size + added.length > budget) continue;
    for (const j of added) out.add(j);
    probes.push(candidates[c]!);
  }
  return { probes, excluded: [...out].sort((a, b) => a - b), candidates: candidates.length, contaminated };
}
