/**
 * Which train documents near-duplicate a probe: the check behind every probe mixflow
 * measures learnability on (a carved holdout, src/sources/holdout.ts, and the disjoint probes
 * of a user's eval split, src/sources/disjoint-probes.ts). A probe whose near-duplicate stays
 * in training measures memorisation: its loss falls as soon as the copy is served.
 *
 * Same test as the cluster statistic (src/sources/near-dup.ts, whose file comment has the
 * measurements): a pair is near when the estimated Jaccard similarity of character 5-gram
 * shingles is at least `threshold` (0.5), or at least `candidate` (0.12) and the edit distance
 * confirms it (`editNear` within `maxEdit`, relative to the domain: min(0.3, half the median
 * distance of random document pairs)). The shingle test alone misses copies with 5–10 % of
 * their characters edited (Jaccard ~0.47 and ~0.25): with it, every probe of the learning
 * bench's 10 %-edit domain kept its copies in training.
 *
 * Why 128 bands × 2 rows (256 hashes; one-permutation hashing, so a signature costs one
 * pass over the text whatever its length): a pair of Jaccard 0.15 meets in some band with
 * probability 1 − (1 − 0.15²)^128 ≈ 0.95, 0.2 with ≈ 0.995, 0.25 with ≈ 0.9997. Two copies
 * of one document edited 10 % each (a probe and its mate in training are both copies) are
 * ~19 % apart, Jaccard ~0.15–0.3. Of 1,500 such pairs of the test's pseudo-prose, 64
 * bands missed 24 (1.6 %); 128 bands missed 2, both in the edit-distance check's window cut
 * (fixed in src/sources/edit-distance.ts), and with both changes none. The probes are few
 * (tens), so the index is small; the query side (every train document once) costs one
 * signature per document plus at most `verifyPerDoc` edit-distance checks, the most similar
 * candidates first. Pure and deterministic.
 */
import { fmix32 } from "../sampling/index.js";
import { editNear } from "./edit-distance.js";
import { minhashSignature, shingleShortcut, signatureSimilarity, typicalEditRate, typicalSimilarity } from "./near-dup.js";

export interface MateOptions {
  /** Estimated Jaccard similarity at or above which a pair is near without more checks (default 0.5). */
  readonly threshold?: number;
  /** Estimated Jaccard similarity below which a pair is never near (default 0.12). */
  readonly candidate?: number;
  /** Upper bound of the normalised edit distance of a near pair (default 0.3; lowered to half the domain's typical distance). */
  readonly maxEdit?: number;
  /** Characters of each document compared (default 4,000). */
  readonly maxChars?: number;
  /** Edit-distance checks per queried document at most (default 8). */
  readonly verifyPerDoc?: number;
}

const BANDS = 128;
const ROWS = 2;
const SHINGLE = 5;

export class ProbeMates {
  private readonly buckets: Map<number, number[]>[] = Array.from({ length: BANDS }, () => new Map());
  private readonly sigs: Uint32Array[];
  private readonly texts: string[];
  private threshold: number;
  private readonly candidate: number;
  private readonly maxChars: number;
  private readonly verifyPerDoc: number;
  /** The edit-distance bound in use (min(maxEdit, half the typical distance of `sample`)). */
  readonly maxEdit: number;

  /**
   * `probes`: the probe texts (item i = probes[i]); `sample`: documents of the domain whose
   * random pairs set the typical distance (the probes themselves when omitted).
   */
  constructor(probes: readonly string[], opts: MateOptions = {}, sample?: readonly string[]) {
    this.maxChars = opts.maxChars ?? 4000;
    this.threshold = opts.threshold ?? 0.5;
    this.candidate = Math.min(this.threshold, opts.candidate ?? 0.12); // before the shortcut is raised below
    this.verifyPerDoc = opts.verifyPerDoc ?? 8;
    this.texts = probes.map((t) => this.cut(t));
    const typical = typicalEditRate((sample ?? probes).map((t) => this.cut(t)));
    this.maxEdit = Math.min(opts.maxEdit ?? 0.3, typical / 2);
    this.sigs = this.texts.map((t) => minhashSignature(t, BANDS * ROWS, SHINGLE, this.maxChars));
    // The shingle shortcut is relative to the domain too (src/sources/near-dup.ts).
    const typicalSigs = sample ? sample.map((t) => minhashSignature(this.cut(t), BANDS * ROWS, SHINGLE, this.maxChars)) : this.sigs;
    this.threshold = shingleShortcut(this.threshold, typicalSimilarity(typicalSigs));
    this.sigs.forEach((s, id) => {
      for (let b = 0; b < BANDS; b++) {
        const key = bandKey(s, b);
        const list = this.buckets[b]!.get(key);
        if (list) list.push(id);
        else this.buckets[b]!.set(key, [id]);
      }
    });
  }

  /** The probes (item numbers, ascending) that `text` near-duplicates. */
  of(text: string): number[] {
    const t = this.cut(text);
    const sig = minhashSignature(t, BANDS * ROWS, SHINGLE, this.maxChars);
    const seen = new Set<number>();
    const near: number[] = [];
    const verify: { id: number; sim: number }[] = [];
    for (let b = 0; b < BANDS; b++) {
      for (const id of this.buckets[b]!.get(bandKey(sig, b)) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        const sim = signatureSimilarity(this.sigs[id]!, sig);
        if (sim >= this.threshold) near.push(id);
        else if (sim >= this.candidate) verify.push({ id, sim });
      }
    }
    verify.sort((a, b) => b.sim - a.sim || a.id - b.id);
    for (const v of verify.slice(0, this.verifyPerDoc)) {
      if (editNear(this.texts[v.id]!, t, this.maxEdit)) near.push(v.id);
    }
    return near.sort((a, b) => a - b);
  }

  private cut(t: string): string {
    return t.length > this.maxChars ? t.slice(0, this.maxChars) : t;
  }
}

function bandKey(s: Uint32Array, band: number): number {
  let h = band + 1;
  for (let r = 0; r < ROWS; r++) h = fmix32(h ^ s[band * ROWS + r]!);
  return h;
}
