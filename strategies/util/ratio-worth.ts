/**
 * Worth of each domain as a fraction of a typical domain's, counted only where the
 * evidence says so: the "ratio" rule of the default strategy (strategies/mixflow.ts).
 *
 * Why not weights proportional to each domain's learnability: what a mixture gains from a
 * domain that learns twice as fast per sample as the others is small (its curve flattens
 * as soon as it gets more data), while what it loses by starving the others is not; and a
 * domain that learns fast per sample is as often memorisable or easy (clean templated
 * logs, near-duplicates) as useful. A perfect quality filter — the oracle of the learning
 * bench — keeps every useful domain at its natural share and drops the rest. So the rule
 * acts as a filter: a domain is worth the reference (the median domain) unless it is
 * measured to learn *less*, and then it is worth its share of the reference.
 *
 * Rule: ref = median of the point estimates m_i over the reference set (the domains
 * measured so far, or the objective's domains), s_ref = the median of their standard errors.
 * If ref ≤ z·s_ref, the typical domain's learnability is not separable from zero (everything
 * has saturated, or nothing is known yet) and every domain gets ratio 1. Otherwise a domain
 * below the reference by d_i = ref − m_i keeps the part of that shortfall its noise cannot
 * explain — the positive-part Stein factor of the difference,
 *   B_i = max(0, 1 − z²(se_i² + s_ref²)/d_i²),   ρ_i = clamp(1 − B_i·d_i/ref, 0, 1),
 * and a domain at or above the reference gets 1. A domain without an estimate, or with an
 * unknown standard error, gets 1. On the simulator's four equal domains the spread of the
 * estimates is ~1.9× their telescoping standard error late in a run (the learner's state,
 * not only the probe, is noisy), so z = 2: a difference must be ~1.5 of its real standard
 * deviations before it cuts anything, and then cuts only its excess.
 *
 * Pure: numbers in, numbers out.
 */

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Result of {@link ratioWorth}: the reference and every domain's ratio ρ_i ∈ [0, 1]. */
export interface RatioWorth {
  /** Median point estimate of the reference set (NaN when it is empty). */
  readonly ref: number;
  /** ref − z·(median standard error of the reference set): > 0 when the reference is separable from zero. */
  readonly refLo: number;
  readonly ratio: number[];
}

/**
 * @param m     point estimates (null: not measured yet)
 * @param se2   their squared standard errors (Infinity: unknown)
 * @param inRef which domains form the reference set (only measured ones count)
 * @param z     standard errors on either side
 */
export function ratioWorth(m: readonly (number | null)[], se2: readonly number[], inRef: readonly boolean[], z: number): RatioWorth {
  const pts: number[] = [];
  const ses: number[] = [];
  m.forEach((v, i) => {
    if (v === null || !inRef[i]) return;
    pts.push(v);
    ses.push(Math.sqrt(Math.max(0, se2[i] ?? Infinity)));
  });
  if (pts.length === 0) return { ref: NaN, refLo: NaN, ratio: m.map(() => 1) };
  const ref = median(pts);
  const sRef = median(ses);
  const refLo = ref - z * sRef;
  if (!(refLo > 0) || !Number.isFinite(sRef)) return { ref, refLo, ratio: m.map(() => 1) };
  const ratio = m.map((v, i) => {
    const s2 = Math.max(0, se2[i] ?? Infinity);
    if (v === null || !Number.isFinite(s2)) return 1;
    const d = ref - v;
    if (!(d > 0)) return 1;
    const B = Math.max(0, 1 - (z * z * (s2 + sRef * sRef)) / (d * d));
    return Math.min(1, Math.max(0, 1 - (B * d) / ref));
  });
  return { ref, refLo, ratio };
}
