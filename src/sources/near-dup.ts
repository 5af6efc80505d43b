/**
 * Near-duplicate clusters among a domain's documents, for `DomainInfo.uniqueClusters`:
 * how much unique content a domain really has, which the default strategy compares with
 * how often the domain has been served.
 *
 * Method: MinHash over character 5-gram shingles, using one-permutation hashing (each
 * shingle hash lands in one of `numHashes` bins, the bin keeps its minimum; empty bins are
 * filled from the next non-empty bin), so a document costs one hash per shingle instead
 * of one per shingle per hash function. LSH banding (`bands` × `rows`) proposes candidate
 * pairs. A pair is joined when the fraction of equal signature entries, an
 * estimate of the shingle-set Jaccard similarity, is at least `threshold` (0.5); a pair
 * below that but at least `candidate` (0.12) is verified by edit distance (edit-distance.ts,
 * `editNear`: Levenshtein on the first and last 512 characters, each half within 0.4 and
 * the whole within `maxEdit` = 0.3 of the compared length) and joined when it passes.
 *
 * Why: two copies of one document with 2 %, 5 % and 10 % of their characters edited share
 * about 0.72, 0.47 and 0.25 of their 5-gram shingles (Jaccard, median; lowest of 779 copy
 * pairs at 256 hashes: 0.57, 0.34, 0.15), unrelated pseudo-prose up to ~0.17 at 64 hashes
 * and ~0.10–0.14 at 256, so no shingle threshold separates 10 % copies from unrelated text
 * of the same language. Edit distance does: over the first 512 characters those copies
 * differ in 0.045, 0.10 and 0.20 of their characters (median; at most 0.09, 0.17, 0.28),
 * unrelated pseudo-prose in at least 0.68. The shingle test stays for what it did before
 * (rearranged boilerplate, exact copies), so on real text only edit-verified pairs are
 * added: on the nine domains of the benchmark corpus the clusters of a 4,000-document
 * sample moved by at most 2.5 % (joined now, e.g.: proverb variants "Al que Cristo se la
 * de, San Pedro se la bendiga." / "A quien Dios se lo de, …"; rejected by the half test:
 * different quotations under one attribution line).
 *
 * Why 128 bands × 2 rows: a pair of Jaccard 0.15 meets in some band with probability
 * 1 − (1 − 0.15²)^128 ≈ 0.95, 0.25 with ≈ 0.9997 (32 × 2, as before: 0.52 and 0.87).
 * Unrelated prose meets often too, so the work is bounded: a bucket of at most
 * `SMALL_BUCKET` documents compares every member with each other cluster in it, a bigger
 * one (its key is made of shingles common in the sample) with `BIG_BUCKET_REPS` only; a
 * pair is verified at most once, a document in at most `verifyPerDoc` verifications, and a
 * verification aligns at most ~1,100 characters (Myers' bit-vector algorithm, with a first
 * look at 64 characters that rejects unrelated text cheaply). On 4,000 pseudo-prose
 * documents of ~1,500 characters this takes ~1.25 s (one core), ~0.57 s before.
 *
 * Relative to the domain (`typicalEditRate`): how far apart two unrelated documents are
 * depends on the kind of text. Templated text (JSON-lines logs with the same keys and
 * different values) differs between random pairs of documents in only 0.22–0.30 of its
 * characters (10th–90th percentile, the learning bench's `clean_logs`), under the 0.3
 * bound, so union–find chained all 601 documents of that domain into one cluster and the
 * duplication prior and repetition factor treated a clean domain as one repeated document
 * (0.15× its uniform share on every held-out family, docs/learning.md). So the bound used
 * is min(`maxEdit`, half the median distance of random document pairs of the sample): a
 * near-duplicate must be at most half as far from its copy as typical unrelated documents
 * of the same domain are from each other. Prose and code measure 0.76–0.89 (median), so
 * their bound stays 0.3; the logs' becomes 0.13. The cost: in a domain of very few unique
 * documents (most random pairs are copies) the median is the copies' own distance, so
 * copies with more than ~5 % edits there are joined only by the shingle test.
 *
 * The shingle shortcut is relative in the same way (2026-12-03): a pair is near by shingles
 * alone only when its estimated Jaccard similarity is at least max(`threshold`, 1 − (1 −
 * J_typ)/2), J_typ the median of random pairs of the sample — at most half as dissimilar as
 * typical unrelated documents of the domain — but never above 0.8 (a domain whose random
 * pairs are copies, boilerplate with J_typ ~0.9, would otherwise join nothing). Short templated documents (the demo's
 * JSON-lines `logs`, 2–4 lines over a few keys and values) share 0.46 of their shingles
 * between random pairs (median; 0.59 at the 90th percentile), so one pair in ten passed the
 * fixed 0.5 and union–find chained all 1,500 documents into one cluster; now 349. For prose
 * (J_typ 0.10–0.18) the shortcut moves to 0.55–0.59 and copies below it go to the edit
 * distance, which joins them: on the learning bench's own junk the 5-source near-duplicate
 * domain now measures 5 clusters (72 before), the boilerplate 1 as before; the nine corpus
 * domains moved by at most 7 % (man_pages 415 → 443).
 *
 * Leaders, not single linkage (2026-12-03): every cluster has a leader (its root); when two
 * documents meet in a bucket their clusters join only if the two clusters' leaders are near
 * (the smaller joins the larger's leader), not whenever the two documents are. Union–find over every near pair chained templated code whose documents differ in
 * a slot or two (the demo's `code`: 135 characters over seven slots, ~180,000 combinations)
 * through one-slot neighbours into 20 clusters for 1,496 distinct functions; now ~210. Copies
 * of one source are still one cluster (each copy is near whichever copy leads), and so are
 * the benchmark's junk (boilerplate 1, near-duplicates 5) and the zoo's repetition domains (40
 * and 100, their sources); on the nine corpus domains the clusters of a 4,000-document
 * sample moved by at most 14 % (man_pages 443 → 503, licenses 478 → 524, the rest under 2 %).
 * An edit verification is charged to the joining cluster's leader only (the leader of a big
 * cluster would otherwise run out of its budget and stop taking copies); every verification
 * is still charged to one document, so there are at most n × `verifyPerDoc`.
 *
 * From a sample to the whole split (`estimateClusters`): a sample of n of N documents sees
 * f1 clusters once, f2 twice, …; the clusters it missed are estimated with Chao & Lin's
 * lower bound for sampling without replacement (Biometrics 2012),
 *   f0 = f1(f1 − 1) / (2(f2 + 1)·n/(n − 1) + f1·q/(1 − q)),   q = n/N,
 * which gives N when every document is unique and ~10,000 for 10,000 documents × 20 copies
 * (scaling singletons by N/n, as before, gave ~136,000: a copy seen once looked unique).
 * It assumes the order of documents is unrelated to their content (an evenly spaced sample
 * of a file that stores copies next to each other sees each once).
 *
 * Bounded and deterministic: at most `maxDocs` documents are examined (evenly spaced
 * indices), each truncated to `maxChars` characters. Pure: no I/O, no randomness.
 */
import { fmix32 } from "../sampling/index.js";
import { editNear, levenshtein } from "./edit-distance.js";

/** Options of {@link nearDupClusters}. */
export interface NearDupOptions {
  /** Documents examined at most (default 20,000), at evenly spaced indices. */
  readonly maxDocs?: number;
  /** Characters per document examined at most (default 20,000). */
  readonly maxChars?: number;
  /** Shingle length in characters (default 5). */
  readonly shingle?: number;
  /** LSH bands and rows per band; signature length = bands × rows (default 128 × 2). */
  readonly bands?: number;
  readonly rows?: number;
  /** Estimated Jaccard similarity at or above which two documents are near-duplicates (default 0.5). */
  readonly threshold?: number;
  /** Estimated Jaccard similarity at or above which a pair is verified by edit distance (default 0.12). */
  readonly candidate?: number;
  /** Normalised edit distance at or below which a verified pair is joined (default 0.3, see edit-distance.ts). */
  readonly maxEdit?: number;
  /** Characters at each end of a document the edit distance compares (default 512). */
  readonly editWindow?: number;
  /** Edit-distance verifications a document takes part in at most (default 32). */
  readonly verifyPerDoc?: number;
}

/** Result of {@link nearDupClusters}. */
export interface NearDupResult {
  /** Documents examined. */
  readonly sampled: number;
  /** Near-duplicate clusters among the examined documents. */
  readonly clusters: number;
  /** Clusters of size 1 among the examined documents. */
  readonly singletons: number;
  /** Clusters of size 2 among the examined documents. */
  readonly doubletons: number;
  /**
   * Estimated clusters in the whole list (`estimateClusters`). Equals `clusters` when
   * every document was examined.
   */
  readonly estimatedClusters: number;
}

/** One-permutation MinHash signature of a text's character shingles. */
export function minhashSignature(text: string, numHashes: number, shingle = 5, maxChars = 20_000): Uint32Array {
  const t = text.length > maxChars ? text.slice(0, maxChars) : text;
  const bins = new Uint32Array(numHashes).fill(0xffffffff);
  const filled = new Uint8Array(numHashes);
  const k = Math.min(shingle, Math.max(1, t.length));
  const last = Math.max(0, t.length - k);
  for (let s = 0; s <= last; s++) {
    let h = 0x811c9dc5; // FNV-1a over the shingle's UTF-16 code units
    for (let j = 0; j < k; j++) h = Math.imul(h ^ (t.charCodeAt(s + j) || 0), 0x01000193);
    const x = fmix32(h);
    const b = x % numHashes;
    const v = fmix32(x ^ 0x9e3779b9);
    if (v < bins[b]! || !filled[b]) {
      bins[b] = filled[b] ? Math.min(bins[b]!, v) : v;
      filled[b] = 1;
    }
  }
  // Densification: an empty bin borrows from the next non-empty bin (cyclically), salted
  // by the distance so borrowed values differ from the original.
  if (filled.some((f) => f === 1)) {
    for (let b = 0; b < numHashes; b++) {
      if (filled[b]) continue;
      let d = 1;
      while (!filled[(b + d) % numHashes]) d++;
      bins[b] = fmix32(bins[(b + d) % numHashes]! ^ Math.imul(d, 0x27d4eb2d));
    }
  }
  return bins;
}

/** Fraction of equal entries of two signatures (estimated Jaccard similarity). */
export function signatureSimilarity(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return a.length > 0 ? eq / a.length : 1;
}

/** Evenly spaced indices 0 ≤ i < n, at most `max` of them. */
function sampleIndices(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor((i * n) / max));
}

/**
 * Median normalised edit distance of `pairs` deterministic pseudo-random pairs of distinct
 * documents, over their first `window` characters (see the file comment); Infinity when
 * there are fewer than two documents.
 */
export function typicalEditRate(docs: readonly string[], pairs = 64, window = 256): number {
  const n = docs.length;
  if (n < 2) return Infinity;
  const rates: number[] = [];
  for (let k = 0; k < pairs; k++) {
    const i = fmix32(2 * k + 0x51) % n;
    let j = fmix32(2 * k + 0x52) % n;
    if (j === i) j = (i + 1) % n;
    const a = docs[i]!.slice(0, window);
    const b = docs[j]!.slice(0, window);
    const l = Math.max(a.length, b.length);
    rates.push(l === 0 ? 0 : levenshtein(a, b) / l);
  }
  rates.sort((x, y) => x - y);
  return rates[rates.length >> 1]!;
}

/**
 * Median estimated Jaccard similarity of 64 fixed pseudo-random pairs of signatures (0 when
 * there are fewer than two): how alike two unrelated documents of the domain typically are.
 */
export function typicalSimilarity(sigs: readonly Uint32Array[], pairs = 64): number {
  const n = sigs.length;
  if (n < 2) return 0;
  const sims: number[] = [];
  for (let k = 0; k < pairs; k++) {
    const i = fmix32(2 * k + 0x61) % n;
    let j = fmix32(2 * k + 0x62) % n;
    if (j === i) j = (i + 1) % n;
    sims.push(signatureSimilarity(sigs[i]!, sigs[j]!));
  }
  sims.sort((x, y) => x - y);
  return sims[sims.length >> 1]!;
}

/**
 * Estimated Jaccard similarity at or above which a pair is near without an edit-distance
 * check: max(`threshold`, 1 − (1 − J_typ)/2), at most `SHORTCUT_CAP` — a domain whose random
 * pairs are themselves copies (boilerplate; J_typ ~0.9) would otherwise push it past what its
 * own copies reach, and its edit bound is the copies' own distance too, so nothing would join.
 */
export function shingleShortcut(threshold: number, typical: number): number {
  return Math.max(threshold, Math.min(SHORTCUT_CAP, 1 - (1 - typical) / 2));
}

const SHORTCUT_CAP = 0.8;

/** Count near-duplicate clusters among `texts` (see the file comment). */
export function nearDupClusters(texts: readonly string[], opts: NearDupOptions = {}): NearDupResult {
  const maxDocs = Math.max(1, opts.maxDocs ?? 20_000);
  const maxChars = opts.maxChars ?? 20_000;
  const bands = Math.max(1, opts.bands ?? 128);
  const rows = Math.max(1, opts.rows ?? 2);
  const threshold = opts.threshold ?? 0.5;
  const candidate = Math.min(threshold, opts.candidate ?? 0.12);
  const window = opts.editWindow ?? 512;
  const verifyCap = opts.verifyPerDoc ?? 32;
  const numHashes = bands * rows;
  const idx = sampleIndices(texts.length, maxDocs);
  const n = idx.length;
  const docs = idx.map((i) => (texts[i]!.length > maxChars ? texts[i]!.slice(0, maxChars) : texts[i]!));
  const maxEdit = Math.min(opts.maxEdit ?? 0.3, typicalEditRate(docs) / 2);
  const sigs = docs.map((t) => minhashSignature(t, numHashes, opts.shingle ?? 5, maxChars));
  const shortcut = shingleShortcut(threshold, typicalSimilarity(sigs));

  // A cluster's root is its leader: leaders are compared when clusters meet (see the file comment).
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const size = new Int32Array(n).fill(1);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const verified = new Uint16Array(n);
  const seen = new Set<number>();
  /** Whether `a` and `b` are near-duplicates: estimated Jaccard ≥ threshold, or a candidate the edit distance confirms. */
  const near = (a: number, b: number): boolean => {
    const sim = signatureSimilarity(sigs[a]!, sigs[b]!);
    if (sim >= shortcut) return true;
    if (sim < candidate || verified[b]! >= verifyCap) return false;
    const key = a < b ? a * n + b : b * n + a;
    if (seen.has(key)) return false;
    seen.add(key);
    verified[b]!++;
    return editNear(docs[a]!, docs[b]!, maxEdit, window);
  };
  for (let band = 0; band < bands; band++) {
    const buckets = new Map<number, number[]>();
    for (let d = 0; d < n; d++) {
      const s = sigs[d]!;
      let key = band + 1;
      for (let r = 0; r < rows; r++) key = fmix32(key ^ s[band * rows + r]!);
      const list = buckets.get(key);
      if (list) list.push(d);
      else buckets.set(key, [d]);
    }
    for (const list of buckets.values()) {
      if (list.length < 2) continue;
      // Compare each member with the leader of every distinct cluster seen in the bucket (at
      // most `maxReps`), so a huge bucket of exact duplicates costs O(size), not O(size²).
      // Leaders, not single linkage: the member's cluster joins another only when the two
      // leaders are near.
      const reps: number[] = [find(list[0]!)];
      const maxReps = list.length <= SMALL_BUCKET ? SMALL_BUCKET : BIG_BUCKET_REPS;
      for (let m = 1; m < list.length; m++) {
        const d = list[m]!;
        const dr = find(d);
        let joined = false;
        for (let k = 0; k < reps.length; k++) {
          const r = find(reps[k]!);
          if (r === dr) {
            joined = true;
            break;
          }
          // Leaders near each other: the smaller cluster joins the larger one's leader.
          if (near(r, dr)) {
            const [big, small] = size[r]! >= size[dr]! ? [r, dr] : [dr, r];
            parent[small] = big;
            size[big]! += size[small]!;
            reps[k] = big;
            joined = true;
            break;
          }
        }
        if (!joined && reps.length < maxReps) reps.push(dr);
      }
    }
  }
  const sizes = new Map<number, number>();
  for (let d = 0; d < n; d++) {
    const r = find(d);
    sizes.set(r, (sizes.get(r) ?? 0) + 1);
  }
  let singletons = 0;
  let doubletons = 0;
  for (const s of sizes.values()) {
    if (s === 1) singletons++;
    else if (s === 2) doubletons++;
  }
  const clusters = sizes.size;
  const res = { sampled: n, clusters, singletons, doubletons };
  return { ...res, estimatedClusters: estimateClusters(res, texts.length) };
}

/**
 * Distinct clusters a bucket's members are compared with at most: every member of a small
 * bucket, a few of a big one (a big bucket's key is made of shingles common in the sample,
 * which say little about identity; copies meet again in smaller buckets of other bands).
 */
const SMALL_BUCKET = 16;
const BIG_BUCKET_REPS = 2;

/**
 * Clusters in a split of `total` documents from a sample's cluster counts (Chao & Lin's
 * bound for sampling without replacement, see the file comment), within [clusters, total].
 */
export function estimateClusters(r: Pick<NearDupResult, "sampled" | "clusters" | "singletons" | "doubletons">, total: number): number {
  const n = r.sampled;
  if (!(total > n) || n < 2) return r.clusters;
  const q = n / total;
  const f1 = r.singletons;
  const f0 = (f1 * (f1 - 1)) / ((2 * (r.doubletons + 1) * n) / (n - 1) + (f1 * q) / (1 - q));
  return Math.round(Math.min(total, Math.max(r.clusters, r.clusters + f0)));
}

/** LSH layout and shingle length shared by the probe checks (holdout carving, eval overlap). */
export const PROBE_LSH = { bands: 16, rows: 4, shingle: 5 } as const;

/** MinHash signature for {@link BandIndex} lookups, over a text's first `maxChars` characters. */
export function probeSignature(text: string, maxChars = 4000): Uint32Array {
  return minhashSignature(text, PROBE_LSH.bands * PROBE_LSH.rows, PROBE_LSH.shingle, maxChars);
}

/**
 * LSH band index over a few signatures: `near(sig, threshold)` lists the indexed items
 * sharing at least one band with `sig` whose estimated Jaccard similarity is ≥ threshold.
 */
export class BandIndex {
  private readonly bands: Map<number, number[]>[] = Array.from({ length: PROBE_LSH.bands }, () => new Map());
  private readonly sigs: Uint32Array[] = [];
  private readonly seen = new Set<number>();

  /** Index `sig`; returns its item number (0, 1, ...). */
  add(sig: Uint32Array): number {
    const id = this.sigs.length;
    this.sigs.push(sig);
    for (let b = 0; b < PROBE_LSH.bands; b++) {
      const key = bandKey(sig, b);
      const list = this.bands[b]!.get(key);
      if (list) list.push(id);
      else this.bands[b]!.set(key, [id]);
    }
    return id;
  }

  near(sig: Uint32Array, threshold: number): number[] {
    const out: number[] = [];
    this.seen.clear();
    for (let b = 0; b < PROBE_LSH.bands; b++) {
      for (const id of this.bands[b]!.get(bandKey(sig, b)) ?? []) {
        if (this.seen.has(id)) continue;
        this.seen.add(id);
        if (signatureSimilarity(this.sigs[id]!, sig) >= threshold) out.push(id);
      }
    }
    return out;
  }
}

function bandKey(s: Uint32Array, band: number): number {
  let h = band + 1;
  for (let r = 0; r < PROBE_LSH.rows; r++) h = fmix32(h ^ s[band * PROBE_LSH.rows + r]!);
  return h;
}

/**
 * Fraction of `probes` (eval texts) that have a near-duplicate among `pool` (train texts):
 * estimated Jaccard similarity of character shingles ≥ `threshold` for some pair. An eval
 * split that shares duplicates with training measures memorisation: its loss falls as soon
 * as the copies are served.
 */
export function sharedDuplicateFraction(probes: readonly string[], pool: readonly string[], threshold = 0.5): number {
  if (probes.length === 0 || pool.length === 0) return 0;
  const index = new BandIndex();
  for (const t of pool) index.add(probeSignature(t));
  return probes.filter((p) => index.near(probeSignature(p), threshold).length > 0).length / probes.length;
}
