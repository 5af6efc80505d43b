/**
 * Per-domain statistics computed once at indexing and used by adaptive strategies:
 * the number of near-duplicate clusters among (a deterministic sample of) the domain's
 * samples, scaled to the whole domain, and its compressibility. Cached next to the
 * source indexes, keyed by the domain's size and a hash of the sampled texts.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { threadId } from "node:worker_threads";
import type { Source } from "./source.js";
import { sourceWarning } from "./warnings.js";
import { estimateClusters, nearDupClusters } from "./near-dup.js";
import { compressRatio } from "./compress.js";

export interface DomainStats {
  /** Estimated unique-content clusters in the whole split. */
  readonly uniqueClusters: number;
  /** Deflate ratio over a sample (≈1 for random bytes, small for boilerplate). */
  readonly compressRatio: number;
}

/** At most this many samples are examined. */
const SAMPLE = 4000;

/**
 * A cache key for what is derived from a split's content: its size and a hash of a
 * deterministic sample of its texts (cheap, and changes when the files change).
 */
export function contentKey(src: Source, texts: readonly string[] = src.textSample(SAMPLE)): string {
  const h = createHash("sha1");
  for (const t of texts) h.update(t).update("\0");
  return `${src.size}-${h.digest("hex").slice(0, 24)}`;
}

/**
 * Read a cached JSON result, or compute and cache it. A damaged entry (truncated, garbled)
 * is recomputed with a warning naming it; the write is atomic (temp file, then rename), so
 * a crash mid-write leaves no half entry.
 */
export function cachedJson<T>(cacheDir: string, name: string, compute: () => T): T {
  const file = path.join(cacheDir, name);
  let text: string | null = null;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    // not cached yet
  }
  if (text !== null) {
    try {
      return JSON.parse(text) as T;
    } catch {
      sourceWarning("damaged cache entry: recomputing it", { cache: file, detail: `${file} is not valid JSON (truncated or garbled); it is recomputed from the data` });
    }
  }
  const value = compute();
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.${threadId}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value));
  fs.renameSync(tmp, file);
  return value;
}

/** At most this many samples are examined (exported so callers can share one sample). */
export const STATS_SAMPLE = SAMPLE;

/** `texts`: the split's `textSample(STATS_SAMPLE)`, when the caller already has it. */
export function domainStats(src: Source, cacheDir: string, texts: readonly string[] = src.textSample(SAMPLE)): DomainStats {
  return cachedJson(cacheDir, `stats5-${contentKey(src, texts)}.json`, () => computeStats(src, texts));
}

function computeStats(src: Source, texts: readonly string[]): DomainStats {
  // From the sample's cluster counts to the split (Chao & Lin, see near-dup.ts).
  const r = nearDupClusters(texts);
  const stats: DomainStats = {
    uniqueClusters: Math.max(1, estimateClusters(r, src.size)),
    compressRatio: compressRatio(texts),
  };
  return stats;
}
