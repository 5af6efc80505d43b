/**
 * Discounted recursive least squares, for mixflow's objective-transfer regression (the
 * decrease of the objective's eval loss per eval interval regressed on the samples served
 * per domain). Kept apart from the strategy so the estimator can be read and tested alone.
 */

/** One discounted RLS step: β ← β + P x (y − xᵀβ)/(λ + xᵀPx), P ← (P − P x xᵀ P/(λ + xᵀPx))/λ. */
export function rlsStep(beta: readonly number[], P: readonly number[], x: readonly number[], y: number, forget: number): { beta: number[]; P: number[] } {
  const K = beta.length;
  const Px = new Array<number>(K).fill(0);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) Px[i]! += P[i * K + j]! * x[j]!;
  let xPx = 0;
  let pred = 0;
  for (let i = 0; i < K; i++) {
    xPx += x[i]! * Px[i]!;
    pred += x[i]! * beta[i]!;
  }
  const den = forget + xPx;
  const err = y - pred;
  const nb = beta.map((b, i) => b + (Px[i]! * err) / den);
  const nP = new Array<number>(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) nP[i * K + j] = (P[i * K + j]! - (Px[i]! * Px[j]!) / den) / forget;
  if (nb.every(Number.isFinite) && nP.every(Number.isFinite)) return { beta: nb, P: nP };
  return { beta: beta.slice(), P: P.slice() };
}

/** Identity × `scale`, row-major. */
export function eye(K: number, scale: number): number[] {
  const out = new Array<number>(K * K).fill(0);
  for (let i = 0; i < K; i++) out[i * K + i] = scale;
  return out;
}
