/**
 * ado: Adaptive Data Optimization — per-domain scaling-law fits steer the mixture.
 *
 * Paper: Jiang et al., "Adaptive Data Optimization: Dynamic Sample Selection with Scaling
 * Laws", arXiv 2410.11820 (ICLR 2025). Rule as in the paper
 * and its reference port (eth-easl/mixtera `AdoDynamicMixing`):
 *   fit, per domain k, every `refitEvery` steps (after `ignoreInitial` warm-up steps):
 *       L_k(n) = ε_k + β_k · n^(−α_k)                (n = samples seen, see `countBy`)
 *   forecast learning speed:  −dL_k/dn = (α_k / n) · (L_k(n) − ε_k)
 *   credit assignment:        λ_k = h_k^s,   h ← γ1 π + (1 − γ1) h     (EMA of the policy)
 *   preference:               ρ_k ∝ μ_k · λ_k · (−dL_k/dn)            (μ = the prior mixture)
 *   policy:                   π = γ2 ρ + (1 − γ2) π̄,  π_k ≥ δmin for seen domains, normalised
 *   history:                  π̄ ← ρ/(t+1) + (1 − 1/(t+1)) π̄          (running average of ρ)
 * so domains whose loss is forecast to fall fastest per sample get more data, tempered by the
 * prior and smoothed over time.
 *
 * Defaults (paper / reference): γ1 = 0.1, γ2 = 0.1, s = 0.5, δmin = 0.01, refitEvery = 1000,
 * ignoreInitial = 500, countBy "total" (the paper's "same step size": every seen domain's n
 * advances by the whole batch, which makes the fits comparable and credits transfer). mixflow
 * specifics, with why:
 *   - bounded state: instead of the full loss history (and a Savitzky–Golay filter), each
 *     domain keeps at most `maxPoints` (128) bins of (n, loss) means; when full, neighbouring
 *     bins merge and the bin width doubles — a smoothed, log-friendly summary of the curve;
 *   - the fit: a grid over α ∈ (0, 0.8] (the paper's bound) with closed-form least squares for
 *     (ε, β) at each α, ε ∈ [0, min loss], β ≥ 0, chosen by squared error in log loss (the
 *     paper fits in log space); no lower bound on ε (the paper's ε ≥ e^0.5 is LM-specific);
 *   - `every` (10): steps between emitted versions; `initial`: μ as a name → weight map.
 * The prior μ is the natural distribution (each domain's share of the train size — tokens
 * for token files, `DomainInfo.size`) unless `initial` says otherwise, as in the paper; the
 * warm-up (ignoreInitial + the first refitEvery steps) serves μ, the paper's reference
 * configuration: the run trains on the natural mixture until the first fits exist.
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { initialWeights, withPins } from "./util/pins.js";
import { naturalMixture } from "./util/natural.js";

const params = z
  .object({
    gamma1: z.number().finite().min(0).max(1).default(0.1),
    gamma2: z.number().finite().min(0).max(1).default(0.1),
    s: z.number().finite().nonnegative().default(0.5),
    deltaMin: z.number().finite().min(0).max(1).default(0.01),
    refitEvery: z.number().int().positive().default(1000),
    ignoreInitial: z.number().int().nonnegative().default(500),
    maxPoints: z.number().int().min(8).max(4096).default(128),
    countBy: z.enum(["total", "domain"]).default("total"),
    every: z.number().int().positive().default(10),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict();

export type AdoParams = z.infer<typeof params>;

/** A fitted curve L(n) = eps + beta · n^(−alpha). */
export interface PowerLaw {
  eps: number;
  beta: number;
  alpha: number;
}

export interface AdoState {
  /** Updates folded in. */
  t: number;
  /** Total samples served (all domains) when each domain was first seen; null = never. */
  seenAt: (number | null)[];
  /** Per domain: bins of [Σ n, Σ loss, points]. */
  bins: [number, number, number][][];
  /** Points per bin per domain (doubles on merge). */
  width: number[];
  fits: (PowerLaw | null)[];
  h: number[] | null;
  piBar: number[] | null;
  sinceEmit: number;
}

/** Add a point to a domain's bins, merging neighbours when over `max`. Pure. */
export function addPoint(bins: readonly [number, number, number][], width: number, n: number, loss: number, max: number): { bins: [number, number, number][]; width: number } {
  const out = bins.map((b) => [...b] as [number, number, number]);
  const last = out[out.length - 1];
  if (last && last[2] < width) {
    last[0] += n;
    last[1] += loss;
    last[2] += 1;
  } else out.push([n, loss, 1]);
  if (out.length <= max) return { bins: out, width };
  const merged: [number, number, number][] = [];
  for (let i = 0; i < out.length; i += 2) {
    const a = out[i]!;
    const b = out[i + 1];
    merged.push(b ? [a[0] + b[0], a[1] + b[1], a[2] + b[2]] : a);
  }
  return { bins: merged, width: width * 2 };
}

/**
 * Fit L(n) = ε + β n^(−α) to points (n > 0, L > 0): grid over α, least squares for (ε, β),
 * scored by squared error of log L. Null with fewer than 3 usable points.
 */
export function fitPowerLaw(points: readonly { n: number; loss: number }[]): PowerLaw | null {
  const pts = points.filter((p) => p.n > 0 && p.loss > 0 && Number.isFinite(p.n) && Number.isFinite(p.loss));
  if (pts.length < 3) return null;
  const minL = Math.min(...pts.map((p) => p.loss));
  let best: PowerLaw | null = null;
  let bestErr = Infinity;
  for (let g = 1; g <= 80; g++) {
    const alpha = g * 0.01;
    const f = pts.map((p) => Math.pow(p.n, -alpha));
    const m = pts.length;
    const mf = f.reduce((a, b) => a + b, 0) / m;
    const ml = pts.reduce((a, p) => a + p.loss, 0) / m;
    let sff = 0;
    let sfl = 0;
    for (let i = 0; i < m; i++) {
      sff += (f[i]! - mf) ** 2;
      sfl += (f[i]! - mf) * (pts[i]!.loss - ml);
    }
    let beta = sff > 0 ? Math.max(0, sfl / sff) : 0;
    let eps = ml - beta * mf;
    if (eps < 0 || eps >= minL) {
      // Clamp ε into [0, min L) and refit β alone: β = Σ f (L − ε) / Σ f².
      eps = Math.min(Math.max(eps, 0), minL * (1 - 1e-9));
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        num += f[i]! * (pts[i]!.loss - eps);
        den += f[i]! * f[i]!;
      }
      beta = den > 0 ? Math.max(0, num / den) : 0;
    }
    let err = 0;
    for (let i = 0; i < m; i++) {
      const pred = eps + beta * f[i]!;
      err += pred > 0 ? (Math.log(pred) - Math.log(pts[i]!.loss)) ** 2 : 1e6;
    }
    if (err < bestErr - 1e-15) {
      bestErr = err;
      best = { eps, beta, alpha };
    }
  }
  return best;
}

/** −dL/dn = (α / n) · (L(n) − ε) = α β n^(−α−1) ≥ 0 (0 for n ≤ 0 or no fit). */
export function negDerivative(f: PowerLaw | null, n: number): number {
  if (!f || !(n > 0)) return 0;
  const v = f.alpha * f.beta * Math.pow(n, -f.alpha - 1);
  return Number.isFinite(v) && v > 0 ? v : 0;
}

/** One ADO policy step. Pure; returns the policy and the new h and π̄. */
export function adoPolicy(
  p: Pick<AdoParams, "gamma1" | "gamma2" | "s" | "deltaMin">,
  mu: readonly number[],
  h: readonly number[],
  piBar: readonly number[],
  t: number,
  negDeriv: readonly number[],
  seen: readonly boolean[],
): { pi: number[]; rho: number[]; h: number[]; piBar: number[] } {
  const num = mu.map((m, k) => Math.max(0, m * Math.pow(Math.max(h[k]!, 0), p.s) * negDeriv[k]!));
  const sr = num.reduce((a, b) => a + b, 0);
  const rho = sr > 0 && Number.isFinite(sr) ? num.map((x) => x / sr) : mu.slice();
  let pi = rho.map((r, k) => p.gamma2 * r + (1 - p.gamma2) * piBar[k]!);
  const sp = pi.reduce((a, b) => a + b, 0);
  pi = pi.map((x) => x / sp);
  pi = pi.map((x, k) => (seen[k] ? Math.max(x, p.deltaMin) : x));
  const sp2 = pi.reduce((a, b) => a + b, 0);
  pi = pi.map((x) => x / sp2);
  const h2 = pi.map((x, k) => p.gamma1 * x + (1 - p.gamma1) * h[k]!);
  const w = 1 / (t + 1);
  const pb = rho.map((r, k) => w * r + (1 - w) * piBar[k]!);
  const spb = pb.reduce((a, b) => a + b, 0);
  return { pi, rho, h: h2, piBar: pb.map((x) => x / spb) };
}

export const adoStrategy: Strategy<AdoParams, AdoState> = {
  name: "ado",
  summary: "ADO: per-domain power-law fits of loss vs samples; weights ∝ prior × forecast loss decrease, smoothed (Jiang et al. 2024).",
  params,
  init(ctx, p) {
    const k = ctx.domains.length;
    const mu = initialWeights(ctx.domains, p.initial ?? naturalMixture(ctx.domains));
    return {
      state: {
        t: 0,
        seenAt: new Array<number | null>(k).fill(null),
        bins: Array.from({ length: k }, () => []),
        width: new Array<number>(k).fill(1),
        fits: new Array<PowerLaw | null>(k).fill(null),
        h: null,
        piBar: null,
        sinceEmit: 0,
      },
      weights: mu,
    };
  },
  update(ctx, p, state, signals) {
    const k = ctx.domains.length;
    const t = state.t + 1;
    const totalAfter = signals.servedTotal.reduce((a, b) => a + (Number.isFinite(b) && b > 0 ? b : 0), 0);
    const stepTotal = signals.served.reduce((a, b) => a + (Number.isFinite(b) && b > 0 ? b : 0), 0);
    const seenAt = state.seenAt.map((s, d) => (s === null && (signals.count[d] ?? 0) > 0 ? totalAfter - stepTotal : s));
    const nOf = (d: number): number =>
      p.countBy === "domain" ? Math.max(0, signals.servedTotal[d] ?? 0) : seenAt[d] === null ? 0 : totalAfter - seenAt[d]!;
    const bins = state.bins.slice();
    const width = state.width.slice();
    if (t > p.ignoreInitial) {
      for (let d = 0; d < k; d++) {
        const c = signals.count[d] ?? 0;
        const l = c > 0 ? (signals.lossSum[d] ?? 0) / c : NaN;
        const n = nOf(d);
        if (!(c > 0) || !Number.isFinite(l) || !(l > 0) || !(n > 0)) continue;
        const r = addPoint(bins[d]!, width[d]!, n, l, p.maxPoints);
        bins[d] = r.bins;
        width[d] = r.width;
      }
    }
    let fits = state.fits;
    const since = t - p.ignoreInitial;
    if (since > 0 && since % p.refitEvery === 0) {
      fits = bins.map((bs) => fitPowerLaw(bs.map(([sn, sl, c]) => ({ n: sn / c, loss: sl / c }))));
    }
    const base: AdoState = { ...state, t, seenAt, bins, width, fits };
    // Warm-up: the prior until the first fit.
    if (since <= p.refitEvery) return { state: base, weights: null };
    const mu = initialWeights(ctx.domains, p.initial ?? naturalMixture(ctx.domains));
    const step = adoPolicy(
      p,
      mu,
      state.h ?? mu,
      state.piBar ?? mu,
      t,
      fits.map((f, d) => negDerivative(f, nOf(d))),
      seenAt.map((s) => s !== null),
    );
    const sinceEmit = state.sinceEmit + 1;
    const next: AdoState = { ...base, h: step.h, piBar: step.piBar, sinceEmit };
    if (sinceEmit < p.every) return { state: next, weights: null };
    return { state: { ...next, sinceEmit: 0 }, weights: finalizeWeights(step.pi, withPins(ctx.domains, mu)) };
  },
};
