/**
 * Near-duplicate clusters among a domain's documents, for `DomainInfo.uniqueClusters`:
 * how much unique content a domain really has, which the default strategy compares with
 * how often the domain has been served.
 *
 * Method: MinHash over character 5-gram shingles, using one-permutation hashing (each
 * shingle hash lands in one of `numHashes` bins, the bin keeps its minimum; empty bins are
 * filled from the next non-empty bin), so a document costs one hash per shingle instead
 * of one per shingle per hash function. LSH banding (`bands` × `rows`) proposes candidate
 * pairs; a pair is joined (union–find) when the fraction of equal signature entries, an
 * estimate of the shingle-set Jaccard similarity, is at least `threshold`.
 *
 * Why 32 bands × 2 rows and a threshold of 0.5: two copies of one document with 2 %, 5 %
 * and 10 % of their characters edited share about 0.70, 0.45 and 0.26 of their 5-gram
 * shingles (Jaccard, median), unrelated prose up to ~0.17 (64 hashes). The old 16 × 4 /
 * 0.7 joined only about half of the 2 % pairs; 0.5 joins them all and some 5 % pairs; 5 %
 * and 10 % edits stay over-counted (a threshold low enough for them joins unrelated text).
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

/** Options of {@link nearDupClusters}. */
export interface NearDupOptions {
  /** Documents examined at most (default 20,000), at evenly spaced indices. */
  readonly maxDocs?: number;
  /** Characters per document examined at most (default 20,000). */
  readonly maxChars?: number;
  /** Shingle length in characters (default 5). */
  readonly shingle?: number;
  /** LSH bands and rows per band; signature length = bands × rows (default 16 × 4). */
  readonly bands?: number;
  readonly rows?: number;
  /** Estimated Jaccard similarity at or above which two documents are near-duplicates (default 0.7). */
  readonly threshold?: number;
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

/** Count near-duplicate clusters among `texts` (see the file comment). */
export function nearDupClusters(texts: readonly string[], opts: NearDupOptions = {}): NearDupResult {
  const maxDocs = Math.max(1, opts.maxDocs ?? 20_000);
  const bands = Math.max(1, opts.bands ?? 32);
  const rows = Math.max(1, opts.rows ?? 2);
  const threshold = opts.threshold ?? 0.5;
  const numHashes = bands * rows;
  const idx = sampleIndices(texts.length, maxDocs);
  const n = idx.length;
  const sigs = idx.map((i) => minhashSignature(texts[i]!, numHashes, opts.shingle ?? 5, opts.maxChars ?? 20_000));

  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (let band = 0; band < bands; band++) {
    const buckets = new Map<string, number[]>();
    for (let d = 0; d < n; d++) {
      const s = sigs[d]!;
      let key = "";
      for (let r = 0; r < rows; r++) key += s[band * rows + r]!.toString(36) + ",";
      const list = buckets.get(key);
      if (list) list.push(d);
      else buckets.set(key, [d]);
    }
    for (const list of buckets.values()) {
      if (list.length < 2) continue;
      // Compare each member with the bucket's first member of every distinct cluster seen,
      // so a huge bucket of exact duplicates costs O(size), not O(size²).
      const reps: number[] = [list[0]!];
      for (let m = 1; m < list.length; m++) {
        const d = list[m]!;
        for (const r of reps) {
          if (find(r) === find(d)) break;
          if (signatureSimilarity(sigs[r]!, sigs[d]!) >= threshold) {
            parent[find(d)] = find(r);
            break;
          }
        }
        if (reps.every((r) => find(r) !== find(d)) && reps.length < 64) reps.push(d);
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
