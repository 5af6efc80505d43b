/**
 * Seeded Gamma/Dirichlet sampling and the RegMix proxy-mixture sampler.
 *
 * RegMix (Liu et al. 2024, arXiv 2407.01492, §3 and its `synthesize_mixture.py`) draws proxy
 * mixtures from Dirichlet(prior · s): the prior is the token distribution over domains
 * (softened by a temperature, prior^0.5 renormalised), and the concentration s is varied on a
 * log grid between 0.1 (sparse, near one-hot mixtures) and 5 (close to the prior), so the
 * sweep covers both corners and the middle of the simplex. Candidates that would repeat a
 * domain more than `maximumUsage` (15) epochs — w_j > min(15 · prior_j, 1) with the
 * un-tempered prior — are rejected; entries below `minimum` (2e-4) are zeroed and weights are
 * rounded to multiples of it; duplicates are dropped and N are picked at random.
 */
import { makeRng } from "../util/rng.js";

export type Rng = () => number;

/** Standard normal by Box–Muller (one of the pair; simple and deterministic). */
export function normal(rng: Rng): number {
  let u = rng();
  while (u <= 0) u = rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * log of a Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape < 1 boosted by U^(1/shape)).
 * Returned in log space so tiny shapes (prior 1e-6 × strength 0.1) do not underflow to 0.
 */
export function logGamma(shape: number, rng: Rng): number {
  if (!(shape > 0)) return -Infinity;
  if (shape < 1) {
    let u = rng();
    while (u <= 0) u = rng();
    return logGamma(shape + 1, rng) + Math.log(u) / shape;
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let xx: number;
    let v: number;
    do {
      xx = normal(rng);
      v = 1 + c * xx;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * xx * xx * xx * xx) return Math.log(d * v);
    if (u > 0 && Math.log(u) < 0.5 * xx * xx + d * (1 - v + Math.log(v))) return Math.log(d * v);
  }
}

/** One Dirichlet(alpha) draw, normalised in log space. */
export function dirichlet(alpha: readonly number[], rng: Rng): number[] {
  const logs = alpha.map((a) => logGamma(a, rng));
  const m = Math.max(...logs);
  if (!Number.isFinite(m)) return alpha.map(() => 1 / alpha.length);
  const e = logs.map((l) => Math.exp(l - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export interface ProxySamplerOptions {
  /** Softening exponent on the prior (paper 0.5). */
  readonly temperature?: number;
  /** Concentration grid: logspace(minStrength, maxStrength, strengths) (paper 0.1, 5, 15). */
  readonly minStrength?: number;
  readonly maxStrength?: number;
  readonly strengths?: number;
  /** Candidates drawn per requested mixture before dedup and selection (paper 100). */
  readonly sampleMultiplier?: number;
  /** Max epochs of a domain in the target run: w_j ≤ min(prior_j · maximumUsage, 1) (paper 15; 0 = no bound). */
  readonly maximumUsage?: number;
  /** Entries below this are zeroed, and weights rounded to multiples of it (paper 2e-4). */
  readonly minimum?: number;
}

function normalise(xs: readonly number[]): number[] {
  const clean = xs.map((x) => (Number.isFinite(x) && x > 0 ? x : 0));
  const s = clean.reduce((a, b) => a + b, 0);
  return s > 0 ? clean.map((x) => x / s) : xs.map(() => 1 / xs.length);
}

/** The tempered prior and the concentration grid the sampler uses. */
function samplerSetup(prior: readonly number[], o: ProxySamplerOptions) {
  const p = normalise(prior);
  const temp = o.temperature ?? 0.5;
  const tempered = normalise(p.map((x) => Math.pow(x, temp)));
  const lo = Math.log10(o.minStrength ?? 0.1);
  const hi = Math.log10(o.maxStrength ?? 5);
  const k = Math.max(1, o.strengths ?? 15);
  const grid = Array.from({ length: k }, (_, i) => Math.pow(10, k === 1 ? lo : lo + ((hi - lo) * i) / (k - 1)));
  const usage = o.maximumUsage ?? 15;
  const bound = p.map((x) => (usage > 0 ? Math.min(x * usage, 1) : 1));
  return { tempered, grid, bound };
}

/**
 * Draw raw candidate mixtures (no rounding or dedup): Dirichlet(tempered prior · s) with s
 * picked uniformly from the grid. Used for the proposal search over many candidates.
 */
export function sampleCandidates(prior: readonly number[], count: number, seed: number, o: ProxySamplerOptions = {}): number[][] {
  const { tempered, grid } = samplerSetup(prior, o);
  const rng = makeRng(seed, 0x7e61);
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const s = grid[Math.min(grid.length - 1, Math.floor(rng() * grid.length))]!;
    out.push(dirichlet(tempered.map((a) => a * s), rng));
  }
  return out;
}

/**
 * The N proxy-run mixtures of a RegMix sweep: pure function of (prior, n, seed, options).
 * Returns fewer than n only if the bounded, rounded candidate pool has fewer distinct mixtures.
 */
export function sampleProxyMixtures(prior: readonly number[], n: number, seed: number, o: ProxySamplerOptions = {}): number[][] {
  const { tempered, grid, bound } = samplerSetup(prior, o);
  const minimum = o.minimum ?? 2e-4;
  const rng = makeRng(seed, 0x5eed);
  const seen = new Set<string>();
  const pool: number[][] = [];
  const draws = n * Math.max(1, o.sampleMultiplier ?? 100);
  for (let i = 0; i < draws; i++) {
    const s = grid[Math.min(grid.length - 1, Math.floor(rng() * grid.length))]!;
    const w = dirichlet(tempered.map((a) => a * s), rng);
    if (w.some((x, j) => x > bound[j]!)) continue;
    const z = w.map((x) => (x < minimum ? 0 : x));
    const sz = z.reduce((a, b) => a + b, 0);
    if (!(sz > 0)) continue;
    const r = z.map((x) => (minimum > 0 ? Math.round(x / sz / minimum) * minimum : x / sz));
    const key = r.map((x) => x.toFixed(8)).join(",");
    if (seen.has(key)) continue;
    seen.add(key);
    pool.push(r);
  }
  // Partial Fisher–Yates: a seeded choice of n distinct candidates.
  const pick = makeRng(seed, 0x9c1c);
  const m = Math.min(n, pool.length);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(pick() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, m);
}
