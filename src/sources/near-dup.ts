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
 * Bounded and deterministic: at most `maxDocs` documents are examined (evenly spaced
 * indices), each truncated to `maxChars` characters. Pure: no I/O, no randomness.
 */
import { fmix32 } from "../sampling/hash.js";

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
  /**
   * Estimated clusters in the whole list: clusters that repeat within the sample are
   * taken as they are, singletons are scaled by total/sampled (each stands for unique
   * content the sample mostly missed). Equals `clusters` when every document was examined.
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
  const bands = Math.max(1, opts.bands ?? 16);
  const rows = Math.max(1, opts.rows ?? 4);
  const threshold = opts.threshold ?? 0.7;
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
  for (const s of sizes.values()) if (s === 1) singletons++;
  const clusters = sizes.size;
  const scale = n > 0 ? texts.length / n : 1;
  return { sampled: n, clusters, singletons, estimatedClusters: Math.round(clusters - singletons + singletons * scale) };
}

/**
 * Fraction of `probes` (eval texts) that have a near-duplicate among `pool` (train texts):
 * estimated Jaccard similarity of character shingles ≥ `threshold` for some pair, found
 * through LSH bands (16 × 4). An eval split that shares duplicates with training measures
 * memorisation: its loss falls as soon as the copies are served.
 */
export function sharedDuplicateFraction(probes: readonly string[], pool: readonly string[], threshold = 0.5, maxChars = 4000): number {
  if (probes.length === 0 || pool.length === 0) return 0;
  const bands = 16;
  const rows = 4;
  const sig = (t: string): Uint32Array => minhashSignature(t, bands * rows, 5, maxChars);
  const poolSigs = pool.map(sig);
  const index: Map<string, number[]>[] = Array.from({ length: bands }, () => new Map());
  const keyOf = (s: Uint32Array, b: number): string => Array.from(s.subarray(b * rows, (b + 1) * rows)).join(",");
  poolSigs.forEach((s, i) => {
    for (let b = 0; b < bands; b++) {
      const k = keyOf(s, b);
      const list = index[b]!.get(k);
      if (list) list.push(i);
      else index[b]!.set(k, [i]);
    }
  });
  let shared = 0;
  for (const p of probes) {
    const s = sig(p);
    let found = false;
    for (let b = 0; b < bands && !found; b++) {
      for (const i of index[b]!.get(keyOf(s, b)) ?? []) {
        if (signatureSimilarity(s, poolSigs[i]!) >= threshold) {
          found = true;
          break;
        }
      }
    }
    if (found) shared++;
  }
  return shared / probes.length;
}
