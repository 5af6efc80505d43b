/**
 * mixflow's indexing-time priors (compressibility, duplication) and its repetition factor:
 * what the server knows about a domain before any training signal, and how many passes over
 * its unique content have been served. The reasons for the thresholds are in the doc comment
 * of strategies/mixflow.ts; the parameters are its own.
 */
import type { DomainInfo } from "../types.js";

/** Compressibility prior: 1 for ordinary text, down to `priorLow` for noise or boilerplate. */
export function compressPrior(ratio: number, p: { readonly noiseRatio: number; readonly boilerplateRatio: number; readonly priorLow: number }): number {
  if (!(ratio > 0)) return 1; // unknown
  const lo = p.priorLow;
  const noiseStart = Math.max(0, p.noiseRatio - 0.15);
  let prior = 1;
  if (ratio >= p.noiseRatio) prior = lo;
  else if (ratio > noiseStart) prior = 1 - ((1 - lo) * (ratio - noiseStart)) / (p.noiseRatio - noiseStart);
  const bpEnd = p.boilerplateRatio * 2;
  if (ratio <= p.boilerplateRatio) prior = Math.min(prior, lo);
  else if (ratio < bpEnd) prior = Math.min(prior, lo + ((1 - lo) * (ratio - p.boilerplateRatio)) / (bpEnd - p.boilerplateRatio));
  return prior;
}

/**
 * Duplication prior: 1 when most documents are unique, down to `priorLow` when the
 * near-duplicate clusters are at most `dupFraction` of the documents (ramp up to 2×).
 * 1 when unknown (no cluster count).
 */
export function dupPrior(d: DomainInfo, p: { readonly dupFraction: number; readonly priorLow: number }): number {
  if (!(d.uniqueClusters > 0) || !(d.trainSamples > 0) || !(p.dupFraction > 0)) return 1;
  const f = Math.min(1, d.uniqueClusters / d.trainSamples);
  if (f <= p.dupFraction) return p.priorLow;
  if (f >= 2 * p.dupFraction) return 1;
  return p.priorLow + ((1 - p.priorLow) * (f - p.dupFraction)) / p.dupFraction;
}

/** Repetition factor exp(−max(0, served/unique − free)/scale); 1 when the unique count is unknown. */
export function repeatFactor(servedTotal: number, d: DomainInfo, p: { readonly repeatFree: number; readonly repeatScale: number }): number {
  const unique = d.uniqueClusters > 0 ? d.uniqueClusters : d.trainSamples;
  if (!(unique > 0)) return 1;
  const r = servedTotal / unique;
  return Math.exp(-Math.max(0, r - p.repeatFree) / p.repeatScale);
}
