/**
 * aioli: online estimation of the linear mixing law, then an exponentiated-gradient step.
 *
 * Paper: Chen, Hu, Sala, Ré et al., "Aioli: A Unified Optimization Framework for Language
 * Model Data Mixing", arXiv 2411.05735 (ICLR 2025), Algorithms 1–2.
 *
 * The linear dynamic mixing law: over a short stretch of training on mixture p, the eval loss
 * of domain i falls by  L_i(t) − L_i(t+δ) ≈ Σ_j A_ij p_j.  Each round of `updateSteps` steps:
 *   1. LearnParams (the first lpRounds · k · lpSteps steps): for each of lpRounds sweeps, for
 *      each domain j in a seeded random order, train lpSteps steps on the probe mixture
 *      (oneHotFactor on j, the rest shared equally) with eval losses measured at each probe's
 *      boundaries (requested with `requestEvalIn`, arriving in `StepSignals.evalLoss`).
 *   2. Estimate A: each interval between two evals gives one row  y_i = L_i(before) − L_i(after),
 *      x_j = Σ_steps served_j / served_total / lpSteps  (the mixture actually served, from
 *      `StepSignals.served`). A_i = ridge least squares over the rows. With exact probe timing
 *      this is the paper's solve of  W A_iᵀ = graph_i  averaged over sweeps; measuring x makes
 *      it exact under the server's update lag too, since a probe that starts late simply shows
 *      up as a blend in x.
 *   3. Normalise A (paper's `aioli_normalize_A`): shift by its minimum if negative, divide by
 *      its sum. Smooth across rounds: Ā ← (1 − ema) A + ema Ā (paper's EMA, first round Ā = A).
 *   4. Mixture for the rest of the round:  w_j ∝ base_j · exp(η · Σ_i c_i Ā_ij),  with c_i = 1
 *      (all domains count, the paper's average-loss objective) or c_i = k · objective_i when
 *      the run declares an objective (a mixflow extension: the target domains' rows count).
 *      With `ema: null`, the paper's non-EMA variant: w ← w · exp(η Σ_i c_i A_ij), cumulative.
 * Domains with no eval loss reported contribute no rows (their A_i row is 0).
 *
 * Assumed eval semantics (as the simulated learner's): the eval loss reported for step s is
 * measured before training on step s's batch; if a trainer measures after, intervals shift by
 * one step, which the measured x absorbs. If eval losses never arrive, A stays 0 and the
 * mixture stays at `base`; the fit runs anyway 2 · lpSteps steps after LearnParams ends.
 *
 * Deviation, with why: LearnParams takes at most half of each round (`lpPlan`: fewer sweeps,
 * then shorter probes). At the authors' defaults it would fill the whole 250-step round from
 * k = 16 domains on, so the run would never exploit.
 *
 * Defaults (the authors' recommended settings, github.com/HazyResearch/aioli README):
 * η = 0.2, ema = 0.1, lpRounds = 4, lpSteps = 4, updateSteps = 250, oneHotFactor = 0.625,
 * normalizeA = true; `ridge` 1e-6 (relative, for the least squares); `initial` base weights
 * (uniform if omitted). Deterministic: the probe order comes from (run seed, round).
 */
import { z } from "zod";
import type { StepSignals, Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { makeRng } from "./util/rng.js";
import { solveLinear } from "./fit/linear.js";
import { initialWeights, withPins } from "./util/pins.js";

const params = z
  .object({
    eta: z.number().finite().positive().default(0.2),
    ema: z.number().finite().min(0).max(1).nullable().default(0.1),
    lpRounds: z.number().int().positive().max(100).default(4),
    lpSteps: z.number().int().positive().default(4),
    updateSteps: z.number().int().positive().default(250),
    oneHotFactor: z.number().finite().gt(0).max(1).default(0.625),
    normalizeA: z.boolean().default(true),
    ridge: z.number().finite().nonnegative().default(1e-6),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict();

export type AioliParams = z.infer<typeof params>;

export interface AioliRow {
  x: number[];
  y: (number | null)[];
}

export interface AioliState {
  round: number;
  phase: "lp" | "fit" | "exploit";
  /** Step (of the next step's position) at which the fit became due. */
  fitDueAt: number;
  /** Exploit weights w (before bounds). */
  weights: number[];
  /** Smoothed mixing-law matrix Ā (k × k), null before the first fit. */
  emaA: number[][] | null;
  /** Rows of the current LearnParams phase. */
  rows: AioliRow[];
  /** Served fractions summed since the last eval. */
  acc: number[];
  lastEval: (number | null)[] | null;
  lastEvalRound: number;
}

/**
 * The LearnParams plan for k domains: sweeps and steps per probe actually used. LearnParams
 * takes at most half of a round (`lpShare`), so that the round exploits for the rest: the
 * authors' defaults (4 sweeps × 4 steps) would fill a 250-step round from k = 16 on (The
 * Pile has 22 domains) and never exploit. Sweeps are cut first (down to 1), then steps per
 * probe (down to 1). For k ≤ 7 at the defaults nothing changes.
 */
export function lpPlan(p: AioliParams, k: number): { rounds: number; steps: number } {
  const budget = Math.max(1, Math.floor(p.updateSteps * LP_SHARE));
  const rounds = Math.max(1, Math.min(p.lpRounds, Math.floor(budget / (k * p.lpSteps))));
  const steps = Math.max(1, Math.min(p.lpSteps, Math.floor(budget / (rounds * k))));
  return { rounds, steps };
}

/** The most of a round LearnParams may take. */
const LP_SHARE = 0.5;

/** The LearnParams duration in steps for k domains (at most half a round, see `lpPlan`). */
export function lpDuration(p: AioliParams, k: number): number {
  const { rounds, steps } = lpPlan(p, k);
  return Math.min(rounds * k * steps, p.updateSteps - 1);
}

/** The probe order of a round: lpRounds seeded permutations of the k domains. */
export function probeOrder(seed: number, round: number, k: number, lpRounds: number): number[] {
  const rng = makeRng(seed, round, 0xa101);
  const out: number[] = [];
  for (let r = 0; r < lpRounds; r++) {
    const perm = Array.from({ length: k }, (_, i) => i);
    for (let i = k - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    out.push(...perm);
  }
  return out;
}

/** The probe mixture for domain j: oneHotFactor on j, the rest shared equally. */
export function probeMixture(k: number, j: number, f: number): number[] {
  if (k === 1) return [1];
  return Array.from({ length: k }, (_, i) => (i === j ? f : (1 - f) / (k - 1)));
}

/**
 * Ridge least squares per loss row i over the collected intervals: A_i = argmin Σ_r
 * (y_ri − x_r·a)² + λ‖a‖², λ = ridge · (mean diagonal of XᵀX). Rows with y_ri null are skipped.
 */
export function estimateA(rows: readonly AioliRow[], k: number, ridge: number): number[][] {
  return Array.from({ length: k }, (_, i) => {
    const use = rows.filter((r) => r.y[i] !== null && r.y[i] !== undefined && Number.isFinite(r.y[i]!));
    if (use.length === 0) return new Array<number>(k).fill(0);
    const ata = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const aty = new Array<number>(k).fill(0);
    for (const r of use) {
      for (let a = 0; a < k; a++) {
        aty[a] = aty[a]! + r.x[a]! * r.y[i]!;
        for (let b = 0; b < k; b++) ata[a]![b] = ata[a]![b]! + r.x[a]! * r.x[b]!;
      }
    }
    let tr = 0;
    for (let a = 0; a < k; a++) tr += ata[a]![a]!;
    const lam = ridge * Math.max(tr / k, 1e-12);
    for (let a = 0; a < k; a++) ata[a]![a] = ata[a]![a]! + lam;
    // `+ 0` turns −0 into 0: the state is JSON, and JSON has no −0 (a resumed run must
    // hold exactly the state the live one held).
    return solveLinear(ata, aty).map((v) => (Number.isFinite(v) ? v + 0 : 0));
  });
}

/** Paper's normalisation: shift by the minimum if negative, then divide by the sum. */
export function normalizeA(a: readonly (readonly number[])[]): number[][] {
  let min = Infinity;
  for (const r of a) for (const v of r) min = Math.min(min, v);
  const shifted = a.map((r) => r.map((v) => (min < 0 ? v - min : v)));
  let sum = 0;
  for (const r of shifted) for (const v of r) sum += v;
  return sum > 0 ? shifted.map((r) => r.map((v) => v / sum + 0)) : shifted.map((r) => r.map(() => 0));
}

/** Column scores Σ_i c_i A_ij (c_i = 1, or k · objective_i). */
export function columnScores(ctx: StrategyContext, a: readonly (readonly number[])[]): number[] {
  const k = a.length;
  const c = ctx.objective ? ctx.objective.map((o) => k * o) : new Array<number>(k).fill(1);
  return Array.from({ length: k }, (_, j) => a.reduce((s, row, i) => s + (c[i] ?? 0) * row[j]!, 0));
}

function expStep(base: readonly number[], scores: readonly number[], eta: number): number[] {
  const logits = base.map((b, j) => Math.log(Math.max(b, 1e-300)) + eta * (scores[j] ?? 0));
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}

function emit(ctx: StrategyContext, p: AioliParams, w: readonly number[]): number[] {
  return finalizeWeights(w, withPins(ctx.domains, initialWeights(ctx.domains, p.initial)));
}

function fold(p: AioliParams, state: AioliState, signals: StepSignals, k: number): AioliState {
  let { rows, acc, lastEval, lastEvalRound } = state;
  const plan = lpPlan(p, k);
  const ev = signals.evalLoss;
  if (ev && ev.some((v) => v !== null && Number.isFinite(v))) {
    const steps = acc.reduce((a, b) => a + b, 0);
    if (lastEval && lastEvalRound === state.round && steps > 0 && state.phase !== "exploit") {
      const x = acc.map((v) => v / plan.steps);
      const y = ev.map((v, i) => {
        const before = lastEval![i];
        return v === null || v === undefined || before === null || before === undefined ? null : before - v;
      });
      rows = [...rows, { x, y }].slice(-(2 * plan.rounds * k + 4));
    }
    lastEval = ev.map((v) => (v !== null && v !== undefined && Number.isFinite(v) ? v : null));
    lastEvalRound = state.round;
    acc = new Array<number>(k).fill(0);
  }
  const tot = signals.served.reduce((a, b) => a + (Number.isFinite(b) && b > 0 ? b : 0), 0);
  if (tot > 0) acc = acc.map((v, j) => v + Math.max(0, signals.served[j] ?? 0) / tot);
  return { ...state, rows, acc, lastEval, lastEvalRound };
}

export const aioliStrategy: Strategy<AioliParams, AioliState> = {
  name: "aioli",
  summary: "Aioli: online linear mixing-law estimation from probe phases, exponentiated-gradient weights (Chen et al. 2024).",
  usesEval: true,
  params,
  init(ctx, p) {
    const k = ctx.domains.length;
    const base = initialWeights(ctx.domains, p.initial);
    const state: AioliState = {
      round: 0,
      phase: "lp",
      fitDueAt: 0,
      weights: base,
      emaA: null,
      rows: [],
      acc: new Array<number>(k).fill(0),
      lastEval: null,
      lastEvalRound: -1,
    };
    if (k === 1) return { state: { ...state, phase: "exploit" }, weights: emit(ctx, p, [1]) };
    // Step 0 is the first probe; the eval of step 0 is the LearnParams baseline.
    const j = probeOrder(ctx.seed, 0, k, lpPlan(p, k).rounds)[0]!;
    return { state, weights: emit(ctx, p, probeMixture(k, j, p.oneHotFactor)), requestEvalIn: 1 };
  },
  update(ctx, p, prev, signals) {
    const k = ctx.domains.length;
    if (k === 1) return { state: prev, weights: null };
    let state = fold(p, prev, signals, k);
    const next = signals.step + 1; // decisions are for the next step on
    const round = Math.floor(next / p.updateSteps);
    const pos = next - round * p.updateSteps;
    const lp = lpDuration(p, k);
    const plan = lpPlan(p, k);
    if (round !== state.round) {
      // A new round: LearnParams again from its first probe.
      state = { ...state, round, phase: "lp", rows: [], lastEval: null, lastEvalRound: -1 };
    }
    if (state.phase === "lp" && pos < lp) {
      if (pos % plan.steps !== 0) return { state, weights: null };
      const j = probeOrder(ctx.seed, round, k, plan.rounds)[pos / plan.steps]!;
      return { state, weights: emit(ctx, p, probeMixture(k, j, p.oneHotFactor)), requestEvalIn: 1 };
    }
    if (state.phase === "lp") {
      // LearnParams is over: one more eval closes the last probe interval.
      return { state: { ...state, phase: "fit", fitDueAt: pos + 2 * plan.steps }, requestEvalIn: 1, weights: null };
    }
    if (state.phase === "fit") {
      const closed = signals.evalLoss !== null && signals.evalLoss.some((v) => v !== null);
      if (!closed && pos < state.fitDueAt && pos > 0) return { state, weights: null };
      let a = estimateA(state.rows, k, p.ridge);
      if (p.normalizeA) a = normalizeA(a);
      const base = initialWeights(ctx.domains, p.initial);
      let weights: number[];
      let emaA = state.emaA;
      if (p.ema === null) {
        weights = expStep(state.weights, columnScores(ctx, a), p.eta);
        emaA = a;
      } else {
        const ema = p.ema;
        emaA = emaA === null ? a : a.map((r, i) => r.map((v, j) => (1 - ema) * v + ema * emaA![i]![j]!));
        weights = expStep(base, columnScores(ctx, emaA), p.eta);
      }
      return { state: { ...state, phase: "exploit", weights, emaA, rows: [] }, weights: emit(ctx, p, weights) };
    }
    return { state, weights: null };
  },
};
