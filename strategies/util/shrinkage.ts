/**
 * Shrinking per-domain estimates toward their mean by how significant each difference is.
 *
 * Why: an adaptive mixer that reacts fast to a domain's measured value also reacts fast to
 * measurement noise, and equally useful domains then swing between the floor and a large
 * share. A slow memory hides the noise but also keeps a domain's early gains for most of a
 * run. Shrinkage separates the two without a slow memory: a domain whose estimate differs
 * from the mean by no more than its standard error says it would by chance gets (about)
 * the mean, so equal domains stay near uniform; a domain that is consistently different (a
 * flat, unlearnable one: gain 0 interval after interval) keeps its own estimate.
 *
 * Rule, per domain: z_i² = (m_i − M)² / se_i², B_i = max(0, 1 − c / z_i²), value
 * M + B_i (m_i − M) — the positive-part Stein factor of each difference on its own
 * (c = `threshold`, default 4: a difference within 2 standard errors is shrunk away, one of
 * 3 keeps 5/9 of itself, one of 6 keeps 8/9). Per domain, not the classical pooled
 * James–Stein: the case that matters is one junk domain among many useful ones, and a
 * pooled between-domain variance dilutes a single outlier by the number of domains (on
 * seven equal domains and one flat one, pooled James–Stein kept the flat one at 0.5–1×
 * its uniform share for 400 steps; test/strategies/mixflow-shrinkage.test.ts).
 *
 * M is the plain mean of the estimates. The centre is max(M, sqrt(mean se²)): weights are
 * proportional to these values, so when the mean itself is within the noise (nothing
 * measurably learnable any more) a leftover difference between near-zero values must not
 * decide the whole mixture. An estimate whose standard error is unknown (Infinity) gets the
 * centre.
 */
export function shrinkToMean(m: readonly number[], se2: readonly number[], threshold = 4): number[] {
  const k = m.length;
  if (k === 0) return [];
  const M = m.reduce((a, b) => a + b, 0) / k;
  const known = se2.filter((v) => Number.isFinite(v));
  const noise = known.length > 0 ? known.reduce((a, b) => a + Math.max(0, b), 0) / known.length : 0;
  const centre = Math.max(M, Math.sqrt(noise));
  return m.map((x, i) => {
    const s = Math.max(0, se2[i] ?? 0);
    if (s === Infinity) return centre;
    const d2 = (x - M) ** 2;
    const B = d2 === 0 ? 0 : s === 0 ? 1 : Math.max(0, 1 - (threshold * s) / d2);
    return centre + B * (x - M);
  });
}
