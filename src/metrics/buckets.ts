/**
 * Domain → series bucketing, shared by the metrics and the report.
 *
 * A run may have up to 100 000 domains (config schema), but a Prometheus series per
 * domain per run is only affordable for a few dozen, and a chart with a hundred colours
 * is unreadable. So every run keeps at most `max` domain-labelled series: when it has more
 * domains, the first `max - 1` (config order, which is stable across restarts and replay,
 * unlike "the largest weights") keep their own series and the rest are summed into one
 * series labelled "other".
 */

/** The label of the overflow series (unless a kept domain already has that name). */
export const OTHER = "other";

export interface DomainBuckets {
  /** Series label per series index. */
  readonly labels: readonly string[];
  /** Series index of every domain (index = domain index). */
  readonly of: Int32Array;
  /** Number of domains in each series (1 for named ones). */
  readonly sizes: Int32Array;
  /** Index of the overflow series, or -1 when every domain has its own. */
  readonly other: number;
}

/**
 * Bucket `names` into at most `max` series (`max` >= 1). A kept domain literally named
 * "other" would collide with the overflow label, so the overflow is then "~other".
 */
export function domainBuckets(names: readonly string[], max: number): DomainBuckets {
  const k = names.length;
  const cap = Math.max(1, Math.floor(max));
  const of = new Int32Array(k);
  if (k <= cap) {
    for (let d = 0; d < k; d++) of[d] = d;
    return { labels: [...names], of, sizes: new Int32Array(k).fill(1), other: -1 };
  }
  const kept = names.slice(0, cap - 1);
  const otherLabel = kept.includes(OTHER) ? `~${OTHER}` : OTHER;
  const other = cap - 1;
  for (let d = 0; d < k; d++) of[d] = d < other ? d : other;
  const sizes = new Int32Array(cap).fill(1);
  sizes[other] = k - other;
  return { labels: [...kept, otherLabel], of, sizes, other };
}

/** Sum per-domain values into per-series values. */
export function sumBySeries(b: DomainBuckets, values: ArrayLike<number>): number[] {
  const out = new Array<number>(b.labels.length).fill(0);
  for (let d = 0; d < values.length; d++) out[b.of[d]!]! += values[d]!;
  return out;
}

/**
 * Mean per series of the non-null per-domain values (null where a series has none). For
 * named series that is the domain's own value; for "other" the unweighted mean of its
 * domains' values, because the callers only have per-domain means, not their counts.
 */
export function meanBySeries(b: DomainBuckets, values: readonly (number | null)[]): (number | null)[] {
  const sum = new Array<number>(b.labels.length).fill(0);
  const n = new Array<number>(b.labels.length).fill(0);
  for (let d = 0; d < values.length; d++) {
    const v = values[d];
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    const s = b.of[d]!;
    sum[s]! += v;
    n[s]!++;
  }
  return sum.map((x, s) => (n[s]! > 0 ? x / n[s]! : null));
}
