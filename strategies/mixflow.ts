/**
 * mixflow: the default adaptive strategy. It must resist two opposite kinds of bad data in
 * one run, so it never trusts a single loss signal:
 *
 * - Unlearnable noise has a high, flat loss: anything rewarded by raw loss (ODM) loves it.
 * - Near-duplicate boilerplate is memorised: its training loss (and an eval split that
 *   shares its duplicates) keeps falling, so anything rewarded by loss decrease or excess
 *   loss (EXP3.S, DoReMi) loves it.
 *
 * Score of domain i (before floor and bounds):
 *
 *   score_i = prior_i · repeat_i · structure_i · value_i
 *
 * 1. value_i — learnability on fixed held-out probes. mixflow asks for eval losses every
 *    `evalEvery` steps (`requestEvalIn`). The gain of an eval interval is the raw decrease
 *    of the domain's probe loss since the previous eval (`gain` "raw"; "min" = decrease of
 *    the running minimum, the pre-2026-12-02 signal, whose chance new lows bias every gain
 *    upward), per sample of the domain served in the interval (denominator floored at half
 *    a uniform share, so a starved domain's noise is not blown up), per 1000 samples:
 *    m = Σ γ^a gain / Σ γ^a samples (γ = `valueSmoothing` per eval), a ratio of discounted
 *    sums.
 *    - Warm-up: gains before `warmupSteps` (100) do not count. In the first ~100 steps every
 *      domain learns its byte statistics, and an alphabet (hex, digits, base64) is learnt
 *      as fast as real text: that burst, 20× the later gains, carried noise's value through
 *      most of a 500-step run. On a synthetic run (test/strategies/mixflow-shrinkage.test.ts:
 *      seven real domains, one that is flat after its burst) the flat domain keeps 0.99× its
 *      uniform share with the old estimator, 0.85× without the warm-up, 0.14–0.26× with it.
 *      The burst comes with a domain's *own* exposure, so the warm-up is also counted in
 *      samples (`warmupExposure`): a domain's gains count only once it has been served what
 *      a uniform share gets in `warmupSteps` steps (warmupSteps·batch/K); until then it is
 *      worth the mean. A domain its prior starved from step 0 (the demo's base64 noise at
 *      5 %) was otherwise still learning its alphabet at step 237, 500× the saturated clean
 *      domains' learnability per sample, and took 0.93 of the mixture
 *      (test/strategies/mixflow-exposure.test.ts). The cost: a domain a prior starves keeps
 *      its prior's start for ~1/(share·K) warm-ups, so a wrong prior costs longer.
 *    - `rule` "ratio" (an option; tried as the default on 2026-12-02 and measured worse on
 *      every held-out family, docs/learning.md "The ratio rule"; strategies/util/ratio-worth.ts):
 *      a domain is worth the median domain's learnability ref unless it is measured to
 *      learn less, and then ref × the part of its shortfall its noise cannot explain
 *      (positive-part Stein factor at `ratioZ` = 3 standard errors). Weights proportional to
 *      learnability chased whatever learnt fastest per sample (templated clean logs,
 *      memorisable near-duplicates) and starved the rest; a quality filter (the learning
 *      bench's oracle) keeps the useful domains at their natural share and drops the others,
 *      and that is what this rule does. When the median is itself within its noise of zero
 *      (late in a long run), the ratios of the last eval at which it was not are kept
 *      (`heldRatio`): no new evidence is no reason to serve a domain cut for learning nothing.
 *      Why it lost: capped at the median, a fast-learning domain can no longer outweigh a
 *      wrong prior (clean JSON-lines logs, prior ~0.2, stayed at the 1 % floor, 0.15× their
 *      uniform share), and hex and digits, which learn at about the median's rate, kept
 *      their full share.
 *    - Standard error (`se` "telescoping", an option; default "pooled"): successive raw gains share a probe eval, so
 *      their discounted sum telescopes and each eval's noise enters with (1 − γ) but at the
 *      ends; the error uses the sum of those squared coefficients (Σc², state `coef2Sum`),
 *      with the eval noise σ_e² from successive differences of the gains (von Neumann,
 *      Var(Δg) = 6σ_e², pooled over domains). "pooled" treats the gains as independent,
 *      ~4.5× the telescoping error at γ = 0.95; on the simulator's four equal domains the
 *      real spread is ~1.9× the telescoping error (the learner's state is noisy too), which
 *      is why `ratioZ` is 3 (z = 2 let one of four equal domains fall to 0.05, z = 2.5 to 0.155).
 *    - `rule` "shrink" (the default): each m pulled toward the mean of the domains unless it
 *      differs by more than `shrinkZ` (1) standard errors (strategies/util/shrinkage.ts),
 *      weights ∝ the shrunk values. With the "shrink" rule the telescoping error (~4.5×
 *      smaller) shrinks too little: on the simulator's four equal domains one fell to the
 *      floor, so the pooled error stays its default.
 * 2. repeat_i — repetition penalty. r_i = servedTotal_i / uniqueClusters_i is how many
 *    times the domain's unique content has been served; repeat_i = exp(−max(0, r_i −
 *    `repeatFree`)/`repeatScale`). Memorisation looks like learnability, but it can only
 *    last while there is new content; once boilerplate's few clusters have been seen a
 *    few times, its value collapses however fast its loss still falls. The first
 *    `repeatFree` = 4 passes are free: up to ~4 epochs, repeated data is about as good as
 *    new (Muennighoff et al. 2023, arXiv 2305.16264), and a trainer that crops windows
 *    from long documents sees far less of a document per serve than the count suggests
 *    (with 1 free pass, real domains of a few hundred long documents were cut to 2/3 of
 *    their share within 500 steps of the learning bench).
 * 3. prior_i — compressibility × duplication, measured at indexing, each down to
 *    `priorLow` (0.1) and 1 for ordinary text. Compressibility (deflate ratio):
 *    ≥ `noiseRatio` (0.75, the ratio of random base64 — 6 bits per byte; ramp from
 *    noiseRatio − 0.15) ⇒ probably noise. Duplication: near-duplicate clusters ≤
 *    `dupFraction` (0.1; ramp to 2×) of the documents ⇒ mostly copies. It is a prior, not a
 *    verdict: it scales learnability, which can still earn a domain weight.
 *    A third ramp, deflate ratio ≤ `boilerplateRatio` ⇒ probably boilerplate, was on (0.06,
 *    ramp to 0.12) until 2026-12-03 and is off by default now (0): compressibility alone
 *    cannot tell boilerplate from clean templated data. The demo's `code` (deflate 0.053)
 *    and `logs` (0.079) domains got 0.1 and 0.38 from it; on the learning bench's own junk
 *    the boilerplate (deflate 0.018) is one near-duplicate cluster of 1,600 documents, so
 *    the duplication prior already gives it 0.1 and nothing there changes. (The zoo's clean
 *    `clean_code`, 0.098, and `clean_logs`, 0.107, got 0.68 and 0.81 from it, which the
 *    held-out runs of 2026-12-03 had shown as clean shares of 0.87–0.98× uniform's; that
 *    was seen before the change, docs/learning.md says so.)
 * 4. Objective alignment (when `ctx.objective` is set): what matters is whether training
 *    on domain j lowers the *objective* domains' eval loss. Per eval interval t, the
 *    decrease y_t of the objective-weighted eval loss is regressed on the
 *    samples served per domain x_t (discounted recursive least squares, forgetting factor
 *    `rlsForget`; y is the raw decrease, whose noise is zero-mean): y_t ≈ Σ_j β_j x_{t,j}.
 *    With an objective, value_j = o_j·(own learnability of j) + (1 − o_j)·LCB(β_j), where
 *    LCB(β_j) = max(0, β_j − `betaConfidence`·sd_j) (sd from the RLS covariance and the
 *    residual variance): objective domains are valued by their own probe progress and
 *    other domains earn credit only when the data show they help. The regression needs
 *    mixture variation, so the served mixture is dithered: each interval, weights are
 *    multiplied by exp(±`dither`) with signs keyed by (seed, interval, domain).
 * 5. structure_i — what order is worth in the domain (`structure`, on by default since
 *    2026-12-03). After the warm-up, every `structureEvery`-th (2nd) eval is followed at
 *    once by one of the same probes with their symbols shuffled (src/sources/shuffled.ts; the
 *    server serves them on odd eval steps, src/runs/probes.ts). gap_i = shuffled loss −
 *    in-order loss of the eval before, averaged (½ on the newest); structure_i = min(1,
 *    gap_i / (`structureShare` (0.25) × the median domain's gap)), 1 when unmeasured. Random
 *    symbols (base64, hex, digits) and text that is already shuffled lose nothing when
 *    shuffled, however well their alphabet is learnt; real text, code, logs and tables lose
 *    most of what the model knows. Learnability alone cannot tell: an alphabet is learnt at
 *    about real text's rate for hundreds of steps (base64's probe loss still fell 4.31 →
 *    4.23 from step 125 to 475 on the learning bench). It is a training signal, so it holds
 *    with the indexing-time priors off. On the learning bench's own junk (the tuning set),
 *    base64's gap stayed at 0.01–0.07 nats while the median domain's grew from 0.29 (step
 *    92) to 1.4 (step 484); structureShare 0.25 and structureEvery 2 were set there
 *    (docs/learning.md). The cost: one extra eval per two, of the same probes. Shuffled
 *    evals start at `structureFrom` (100, the warm-up): starting at step 25 or 50 was tried on
 *    the tuning set on 2026-12-03 (priors on: 0.809 / 0.784 and 0.803 / 0.795× uniform's steps
 *    vs 0.794 / 0.792; priors off: 0.830 / 0.850 and 0.809 / 0.865 vs 0.860 / 0.855): it
 *    narrows the priors-off gap on one seed and costs the default, so it stays 100.
 *
 * Under the "ratio" rule with an objective, the outside-the-objective cap is the median
 * objective domain's worth instead of the best one's. `priorSpan` "start" applies the prior
 * only until a domain is measured; the default "always" keeps it (see the parameter).
 *
 * Weights: w = floor + (1 − K·floor)·score/Σscore, with `floor` (default 0.01) for every
 * domain so nothing is ever starved of evidence; before the first two evals, score is
 * the prior alone. Pinned domains keep at least their initial share (their minWeight is
 * raised to it), and the domains' min/max bounds apply last (`finalizeWeights`). New
 * weights are proposed only when an eval arrives (between evals nothing new is known
 * except served counts), which keeps the journal small.
 *
 * Defaults: evalEvery 25, valuePower 1 (weights proportional to the shrunk learnability;
 * was 0.5 before shrinkage existed), valueSmoothing 0.95, warmupSteps 100, shrinkZ 1, gain
 * "raw" — set 2026-12-02 on the simulator's scenarios and the synthetic flat-domain test
 * (shrinkZ 1 vs 1.5 / 2: flat domain 0.14–0.26× vs 0.25–0.35× / 0.43× of uniform; four
 * equal domains 0.38–1.53× vs 0.60–1.49× / 0.67–1.42×; valueSmoothing 0.8 let equal
 * domains reach 0.07×), then checked on the learning bench's own junk (base64, boilerplate,
 * near-duplicates; docs/learning.md): 0.829 / 0.830× uniform's steps (seeds 0/1) vs 0.834 /
 * 0.911× before. No zoo family of bench/learning/zoo.py informed any of them. With the
 * exposure warm-up (no constant set): 0.825 / 0.805×, junk share 0.041 / 0.042 (was 0.059 / 0.057).
 * betaConfidence 1 (β enters as
 * its lower confidence bound β − sd, so a domain earns objective credit only on evidence),
 * repeatFree 4, repeatScale 2, floor 0.01, noiseRatio 0.75, boilerplateRatio 0 (off; 0.06 before 2026-12-03),
 * dupFraction 0.1, priorLow 0.1, dither 0.3, rlsForget 0.99,
 * `priors` true (false switches the indexing-time priors off, for the check that the training
 * signal carries the decisions), `initial` uniform unless given as a name → weight map. The priors, repeatFree and floor
 * were set on the real-training learning bench (`bench/learning`, docs/learning.md): the
 * old values (noise 0.9, boilerplate 0.1, no duplication prior, repeatFree 1, floor 0.02,
 * priorLow 0.25) reached uniform's loss in 0.89/0.88× its steps (seeds 0/1); the same
 * with priorLow 0.25 in 0.83/0.83×; these in 0.79/0.81×.
 */
import { z } from "zod";
import type { StepSignals, Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { initialWeights, withPins } from "./util/pins.js";
import { hashUnit } from "./util/rng.js";
import { shrinkToMean } from "./util/shrinkage.js";
import { eye, rlsStep } from "./util/rls.js";
import { compressPrior, dupPrior, repeatFactor } from "./util/priors.js";
import { median, ratioWorth } from "./util/ratio-worth.js";

export { compressPrior, dupPrior, repeatFactor, rlsStep };

const params = z
  .object({
    evalEvery: z.number().int().min(1).max(1_000_000).default(25),
    valuePower: z.number().finite().min(0).max(4).default(1),
    valueSmoothing: z.number().finite().min(0).max(0.999).default(0.95),
    repeatFree: z.number().finite().min(0).default(4),
    repeatScale: z.number().finite().positive().default(2),
    floor: z.number().finite().min(0).max(1).default(0.01),
    noiseRatio: z.number().finite().min(0).max(2).default(0.75),
    /**
     * Deflate ratio at or below which a domain is probably boilerplate (ramp to 2×); 0 (the
     * default since 2026-12-03) switches it off: see the header, item 3.
     */
    boilerplateRatio: z.number().finite().min(0).max(1).default(0),
    dupFraction: z.number().finite().min(0).max(1).default(0.1),
    priorLow: z.number().finite().min(0).max(1).default(0.1),
    dither: z.number().finite().min(0).max(2).default(0.3),
    betaConfidence: z.number().finite().min(0).default(1),
    rlsForget: z.number().finite().min(0.5).max(1).default(0.99),
    /** false: each domain's own learnability estimate, unshrunk (the pre-2026-12-02 behaviour). */
    shrinkage: z.boolean().default(true),
    /** Standard errors within which a domain's difference from the mean is shrunk away. */
    shrinkZ: z.number().finite().min(0).default(1),
    gain: z.enum(["min", "raw"]).default("raw"),
    /** Steps whose probe gains do not count (every domain's early burst of byte statistics). */
    warmupSteps: z.number().int().min(0).default(100),
    /**
     * true: a domain's gains also wait until it has been served what a uniform share gets in
     * `warmupSteps` steps (its own burst comes with its own exposure); false: steps only.
     */
    warmupExposure: z.boolean().default(true),
    /** false: indexing-time priors (compressibility, duplication) off — every prior is 1. */
    priors: z.boolean().default(true),
    /**
     * "start": a domain's prior scales its score only until its learnability is measured (the
     * prior sets the start, the training signal the verdict); "always": for the whole run.
     * "always" stays the default: under the "ratio" rule on the tuning set both give 0.792 /
     * 0.798× uniform's steps, "always" with less junk served (0.041 vs 0.052), and on the
     * simulator's noise scenario "start" lets the noise domain back to 0.15 of the samples
     * (0.03 with "always"; "shrink" rule 0.16 vs 0.03): the probe signal alone does not keep
     * noise down (docs/learning.md).
     */
    priorSpan: z.enum(["start", "always"]).default("always"),
    /**
     * "shrink" (default): worth ∝ learnability shrunk toward the mean; "ratio": worth = the
     * median domain's learnability × the fraction of it a domain is measured to miss
     * (strategies/util/ratio-worth.ts; worse on every held-out family, see the header);
     * "guard": every domain keeps its initial share × the "ratio" rule's fraction × its
     * prior, repetition and structure factors, and only what that frees is shared ∝ the
     * "shrink" rule's scores (no domain loses share because another learns faster).
     */
    rule: z.enum(["ratio", "shrink", "guard"]).default("shrink"),
    /** Standard errors on either side in the "ratio" rule. */
    ratioZ: z.number().finite().min(0).default(3),
    /**
     * Standard error of a domain's learnability: "pooled" (default) treats successive gains as
     * independent; "telescoping" counts that they share a probe eval (their sum telescopes),
     * ~4.5× smaller at valueSmoothing 0.95.
     */
    se: z.enum(["telescoping", "pooled"]).default("pooled"),
    initial: z.record(z.string(), z.number().finite().nonnegative()).optional(),
    /**
     * The structure signal (header, item 5): after the warm-up, every `structureEvery`-th eval
     * is followed by one of the same probes shuffled, and a domain whose loss order does not
     * lower is scaled down. false: off (evals as before, every probe in order).
     */
    structure: z.boolean().default(true),
    structureEvery: z.number().int().min(1).default(2),
    /** Step from which shuffled evals are asked for and their gaps count. */
    structureFrom: z.number().int().min(0).default(100),
    /** A domain's order gain below this share of the median domain's scales it down linearly (to 0 at no gain). */
    structureShare: z.number().finite().min(0).max(1).default(0.25),
  })
  .strict();

export type MixflowParams = z.infer<typeof params>;

export interface MixflowState {
  /** Running minimum of each domain's probe eval loss (null before its first eval). */
  readonly minEval: (number | null)[];
  /** Each domain's latest probe eval loss (absent in older journals: the running minimum stands in). */
  readonly lastEval?: (number | null)[];
  /** Learnability per 1000 samples, gainSum/servedSum (null before the first gain). */
  readonly value: (number | null)[];
  /**
   * Discounted sums (factor `valueSmoothing` per eval) of probe-loss gains and of the
   * samples they were earned on; absent in journals written before they existed.
   */
  readonly gainSum?: number[];
  readonly servedSum?: number[];
  /**
   * For the estimate's standard error, discounted by valueSmoothing² per eval: Σ (Δg)² of
   * successive interval gains g, how many such differences, and how many gains (Σ 1);
   * lastGain = the latest interval's gain. Absent in older journals: the standard error is
   * then unknown (every estimate is shrunk fully to the mean) until two differences have
   * been folded in.
   */
  readonly diff2Sum?: number[];
  readonly diffCount?: number[];
  readonly gainCount?: number[];
  readonly lastGain?: (number | null)[];
  /**
   * Σ of the squared coefficients with which each probe eval enters gainSum (discounted): the
   * gains telescope, so an eval's noise enters with (1 − γ) except at the ends. Absent in
   * older journals: 2·gainCount stands in (the pooled, larger estimate).
   */
  readonly coef2Sum?: number[];
  /** The "ratio" rule's ratios of the last eval whose reference was separable from zero (absent: all 1). */
  readonly heldRatio?: number[];
  /** Samples served per domain since the last eval. */
  readonly sinceEval: number[];
  /** Running minimum of the objective-weighted eval loss (null before the first). */
  readonly objMin: number | null;
  /** RLS estimate β (K) and inverse-covariance P (K×K, row-major); empty without objective. */
  readonly beta: number[];
  readonly P: number[];
  /** EMA of the squared RLS residual (noise variance of the objective decrease). */
  readonly resVar: number;
  /** Evals received so far (the dither interval index). */
  readonly evals: number;
  /** Step by which an eval is due; re-requested if it never came. */
  readonly evalDue: number;
  /**
   * Structure signal: per domain, the shuffled probes' loss minus the in-order probes' loss
   * of the eval before (averaged, weight 1/2 on the newest); null before the first after the
   * warm-up. Absent in journals written before it existed (no structure factors then).
   */
  readonly shufGap?: (number | null)[];
}

/** The dither multipliers of eval interval `k` (all 1 when there is no objective). */
export function ditherFactors(ctx: StrategyContext, p: MixflowParams, k: number): number[] {
  if (!ctx.objective || p.dither === 0) return ctx.domains.map(() => 1);
  return ctx.domains.map((_, i) => Math.exp(hashUnit(ctx.seed, k, i, 0xd1) < 0.5 ? -p.dither : p.dither));
}

/** Each domain's learnability estimate m (per 1000 samples, null before its first gain) and its squared standard error. */
export interface ValueEstimates {
  readonly m: (number | null)[];
  readonly se2: number[];
}

/**
 * The standard errors of the learnability estimates. One noise variance for all domains
 * (pooled: a per-domain estimate from a handful of intervals is itself so noisy that some
 * domain always looks precise by chance), from successive differences of the interval gains
 * g_t = e_(t−1) − e_t (von Neumann: a smooth trend barely enters): Var(Δg) = 6σ_e² for a
 * probe eval's noise σ_e². "pooled": Var(Σ γ^a g / S) = Var(g)·Σγ^2a / S², treating gains as
 * independent (they are not: neighbours share an eval, so the sum telescopes); "telescoping":
 * σ_e²·Σc² / S² with c the coefficients with which each eval enters the sum.
 */
export function valueEstimates(st: MixflowState, mode: "pooled" | "telescoping" = "pooled"): ValueEstimates {
  let D = 0;
  let N = 0;
  st.value.forEach((v, i) => {
    if (v === null) return;
    D += st.diff2Sum?.[i] ?? 0;
    N += st.diffCount?.[i] ?? 0;
  });
  const sigmaE2 = N > 1.5 ? D / N / 6 : Infinity;
  const se2 = st.value.map((v, i) => {
    const S = st.servedSum?.[i] ?? 0;
    const n = st.gainCount?.[i] ?? 0;
    if (v === null || sigmaE2 === Infinity || !(S > 0) || !(n > 0)) return Infinity;
    const coef2 = mode === "telescoping" ? (st.coef2Sum?.[i] ?? 2 * n) : 2 * n;
    return (sigmaE2 * coef2 * 1e6) / (S * S);
  });
  return { m: st.value.slice(), se2 };
}

/**
 * Each domain's learnability (per 1000 samples), shrunk toward the mean of the domains by
 * how significant its difference is (strategies/util/shrinkage.ts); null before its first
 * gain. The "shrink" rule's values.
 */
export function shrunkValues(st: MixflowState, z = 2, mode: "pooled" | "telescoping" = "pooled"): (number | null)[] {
  const { m, se2 } = valueEstimates(st, mode);
  const idx: number[] = [];
  m.forEach((v, i) => {
    if (v !== null) idx.push(i);
  });
  const out: (number | null)[] = st.value.map(() => null);
  shrinkToMean(idx.map((i) => m[i]!), idx.map((i) => se2[i]!), z * z).forEach((v, j) => (out[idx[j]!] = Math.max(0, v)));
  return out;
}

/**
 * The "ratio" rule's reference and ratios in a state (strategies/util/ratio-worth.ts): the
 * reference set is the objective's domains when the regression is in use, else every
 * measured domain. When the reference is not separable from zero (late in a long run every
 * useful domain's gain sinks into the noise), the ratios of the last state in which it was
 * are kept (`heldRatio`): no new evidence is not evidence that a domain cut for learning
 * nothing has started to learn. On the simulator's noise scenario the pure-noise domain went
 * back to its uniform share from step ~1700 of 3000 without this.
 */
export function ratioState(ctx: StrategyContext, p: MixflowParams, st: MixflowState, useBeta: boolean): { ref: number; ratio: number[] } {
  const { m, se2 } = valueEstimates(st, p.se);
  const inRef = ctx.domains.map((_, i) => !useBeta || (ctx.objective![i] ?? 0) > 0);
  const r = ratioWorth(m, se2, inRef, p.ratioZ);
  if (r.refLo > 0) return { ref: r.ref, ratio: r.ratio };
  return { ref: r.ref, ratio: st.heldRatio?.slice() ?? ctx.domains.map(() => 1) };
}

/**
 * Worth of each domain under the "ratio" rule: ref·ρ_i; with an objective, o·ref·ρ_i +
 * (1 − o)·LCB(β_i) as in the "shrink" rule, and a domain outside the objective is worth at
 * most the median objective domain (transfer from elsewhere does not beat the typical target).
 */
function ratioWorths(ctx: StrategyContext, p: MixflowParams, st: MixflowState, useBeta: boolean): number[] {
  const K = ctx.domains.length;
  const r = ratioState(ctx, p, st, useBeta);
  if (!(r.ref > 0)) return r.ratio;
  const own = r.ratio.map((x) => r.ref * x);
  if (!useBeta) return own;
  const worth = ctx.domains.map((_, i) => {
    const o = ctx.objective![i] ?? 0;
    const sd = Math.sqrt(Math.max(0, st.P[i * K + i] ?? 0) * st.resVar);
    const lcb = Math.max(0, (st.beta[i] ?? 0) - p.betaConfidence * sd);
    return o * own[i]! + (1 - o) * lcb;
  });
  // Outside the objective, transfer is worth at most what the median objective domain is.
  const cap = median(worth.filter((_, i) => (ctx.objective![i] ?? 0) > 0));
  return worth.map((w, i) => ((ctx.objective![i] ?? 0) > 0 ? w : Math.min(w, cap)));
}

/**
 * Structure factor of each domain: 1 when order lowers its probe loss by at least
 * `structureShare` of what it does for the median measured domain, linearly down to 0 when
 * order is worth nothing (random symbols, text already shuffled); 1 when unmeasured or when
 * the median itself is not positive (nothing to compare with).
 */
export function structureFactors(p: MixflowParams, st: MixflowState, K: number): number[] {
  const gaps = st.shufGap;
  if (!p.structure || !gaps) return new Array<number>(K).fill(1);
  const known = gaps.filter((g): g is number => g !== null && Number.isFinite(g));
  const med = known.length > 0 ? median(known) : 0;
  if (!(med > 0) || !(p.structureShare > 0)) return new Array<number>(K).fill(1);
  return gaps.map((g) => (g === null || !Number.isFinite(g) ? 1 : Math.min(1, Math.max(0, g / (p.structureShare * med)))));
}

/** The smallest k ≥ `k` with step + k of the given parity (0: in order, 1: shuffled probes). */
export function toParity(step: number, k: number, parity: 0 | 1): number {
  return (step + k) % 2 === parity ? k : k + 1;
}

/** Fold a shuffled-probe eval (an odd step) into the structure gaps; learnability is untouched. */
function foldStructure(p: MixflowParams, st: MixflowState, ev: readonly (number | null)[], step: number): MixflowState {
  const gaps = (st.shufGap ?? st.value.map(() => null)).slice();
  if (step < p.structureFrom) return { ...st, shufGap: gaps };
  ev.forEach((e, i) => {
    const base = st.lastEval?.[i];
    if (e === null || e === undefined || !Number.isFinite(e) || base === null || base === undefined) return;
    const g = e - base;
    const old = gaps[i];
    gaps[i] = old === null || old === undefined ? g : 0.5 * old + 0.5 * g || 0;
  });
  return { ...st, shufGap: gaps };
}

/** The weights mixflow proposes in a given state with the given cumulative served counts. */
export function mixflowWeights(ctx: StrategyContext, p: MixflowParams, st: MixflowState, servedTotal: readonly number[]): number[] {
  const K = ctx.domains.length;
  const init = initialWeights(ctx.domains, p.initial);
  const useBeta = ctx.objective !== null && st.evals >= 3;
  if (p.rule === "ratio") return weightsFromWorth(ctx, p, st, servedTotal, ratioWorths(ctx, p, st, useBeta), init);
  const keep = p.rule === "guard" ? guardKeep(ctx, p, st, useBeta) : null;
  const values = p.shrinkage ? shrunkValues(st, p.shrinkZ, p.se) : st.value.map((v) => (v === null ? null : Math.max(0, v)));
  const known = values.filter((v): v is number => v !== null);
  const mean = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 0;
  // Worth of each domain before prior and repetition factor (not yet raised to valuePower).
  const worth = ctx.domains.map((_, i) => {
    if (known.length === 0 || !(mean > 0)) return 1;
    if (!useBeta) return values[i] ?? mean;
    // Objective domains are worth their own learnability; every domain is also worth
    // what it was measured to do for the objective (β, same unit: eval decrease per
    // 1000 samples).
    const o = ctx.objective![i] ?? 0;
    const sd = Math.sqrt(Math.max(0, st.P[i * K + i] ?? 0) * st.resVar);
    const lcb = Math.max(0, (st.beta[i] ?? 0) - p.betaConfidence * sd);
    return o * (values[i] ?? 0) + (1 - o) * lcb;
  });
  if (useBeta) {
    // A domain outside the objective is worth at most what the best objective domain is
    // worth: transfer from elsewhere does not beat training on the target itself. Without
    // this bound one lucky lower confidence bound (a starved domain's β rests on a few
    // samples, its sd on a residual variance that can dip by chance) gave an irrelevant
    // domain 0.43 of the mixture at step 480 of a held-out run (docs/learning.md).
    let cap = 0;
    ctx.domains.forEach((_, i) => {
      if ((ctx.objective![i] ?? 0) > 0) cap = Math.max(cap, worth[i]!);
    });
    ctx.domains.forEach((_, i) => {
      if ((ctx.objective![i] ?? 0) === 0) worth[i] = Math.min(worth[i]!, cap);
    });
  }
  return weightsFromWorth(ctx, p, st, servedTotal, worth, init, keep);
}

/**
 * The "guard" rule's kept fraction of each domain's initial share before its quality
 * factors: the "ratio" rule's ρ (1 unless measured to learn less than the median domain);
 * with the objective in use, a domain outside it keeps its worth (LCB of its transfer β) as a
 * fraction of the median objective domain's, at most 1.
 */
function guardKeep(ctx: StrategyContext, p: MixflowParams, st: MixflowState, useBeta: boolean): number[] {
  const { ratio } = ratioState(ctx, p, { ...st, heldRatio: undefined }, useBeta);
  if (!useBeta) return ratio;
  const worths = ratioWorths(ctx, p, st, useBeta);
  const ref = median(worths.filter((_, i) => (ctx.objective![i] ?? 0) > 0));
  return ctx.domains.map((_, i) => ((ctx.objective![i] ?? 0) > 0 ? ratio[i]! : ref > 0 ? Math.min(1, worths[i]! / ref) : 1));
}

/**
 * score = prior × repetition × worth^valuePower, then floor, dither, pins and bounds. With
 * `keep` (the "guard" rule), each domain first keeps init × keep × prior × repetition ×
 * structure and only the rest is shared by score.
 */
function weightsFromWorth(ctx: StrategyContext, p: MixflowParams, st: MixflowState, servedTotal: readonly number[], worth: readonly number[], init: readonly number[], keep: readonly number[] | null = null): number[] {
  const K = ctx.domains.length;
  const structure = structureFactors(p, st, K);
  const quality = ctx.domains.map((d, i) => {
    const priorOn = p.priors && (p.priorSpan === "always" || st.value[i] === null);
    const prior = priorOn ? compressPrior(d.compressRatio, p) * dupPrior(d, p) : 1;
    const rep = repeatFactor(servedTotal[i] ?? 0, d, p);
    return prior * rep * structure[i]! * (init[i]! > 0 ? 1 : 0);
  });
  const score = quality.map((q, i) => q * Math.pow(worth[i]!, p.valuePower));
  const total = score.reduce((a, b) => a + b, 0);
  const floor = Math.min(p.floor, 1 / K);
  let base = total > 0 && Number.isFinite(total) ? score.map((s) => s / total) : init;
  if (keep && total > 0 && Number.isFinite(total)) {
    const kept = quality.map((q, i) => init[i]! * Math.min(1, Math.max(0, keep[i] ?? 1)) * q);
    const free = Math.max(0, 1 - kept.reduce((a, b) => a + b, 0));
    base = kept.map((k, i) => k + (free * score[i]!) / total);
  }
  const dith = ditherFactors(ctx, p, st.evals);
  const raw = base.map((b, i) => (floor + (1 - K * floor) * b) * dith[i]!);
  const doms = withPins(ctx.domains, init);
  return finalizeWeights(raw, doms);
}

/**
 * Samples a domain must have been served before its probe gains count: what a uniform share
 * of the batch receives in `warmupSteps` steps (0 with `warmupExposure` off).
 */
export function warmupExposure(ctx: StrategyContext, p: MixflowParams): number {
  return p.warmupExposure ? (p.warmupSteps * ctx.batchSize) / Math.max(1, ctx.domains.length) : 0;
}

function foldEval(ctx: StrategyContext, p: MixflowParams, st: MixflowState, ev: readonly (number | null)[], step: number, servedTotal: readonly number[]): MixflowState {
  const K = ctx.domains.length;
  const minEval = st.minEval.slice();
  const lastEval = (st.lastEval ?? st.minEval).slice();
  const value = st.value.slice();
  const gainSum = (st.gainSum ?? new Array<number>(K).fill(0)).slice();
  const servedSum = (st.servedSum ?? new Array<number>(K).fill(0)).slice();
  const diff2Sum = (st.diff2Sum ?? new Array<number>(K).fill(0)).slice();
  const diffCount = (st.diffCount ?? new Array<number>(K).fill(0)).slice();
  const gainCount = (st.gainCount ?? new Array<number>(K).fill(0)).slice();
  const lastGain = (st.lastGain ?? new Array<number | null>(K).fill(null)).slice();
  const coef2Sum = (st.coef2Sum ?? gainCount.map((n) => 2 * n)).slice();
  const g2 = p.valueSmoothing * p.valueSmoothing;
  const totalSince = st.sinceEval.reduce((a, b) => a + b, 0);
  const denomFloor = totalSince / (2 * Math.max(1, K));
  const exposure = warmupExposure(ctx, p);
  for (let i = 0; i < K; i++) {
    const e = ev[i];
    if (e === null || e === undefined || !Number.isFinite(e)) continue;
    const prev = minEval[i];
    if (prev === null || prev === undefined || step < p.warmupSteps || (servedTotal[i] ?? 0) < exposure) {
      // First probe loss, or still in the warm-up (of the run, or of this domain's own
      // exposure): a starting point, no gain yet.
      minEval[i] = e;
      lastEval[i] = e;
      continue;
    }
    const m = Math.min(prev, e);
    minEval[i] = m;
    const last = st.lastEval?.[i] ?? prev;
    lastEval[i] = e;
    const served = Math.max(st.sinceEval[i] ?? 0, denomFloor, 1);
    // A ratio of discounted sums, not an EMA of per-interval rates: an interval's rate is
    // mostly 0 with an occasional new low, and averaging those ratios let equally useful
    // domains swing between the floor and 60 % of the mixture.
    const gain = p.gain === "raw" ? last - e : prev - m;
    // (x || 0): a −0 from underflow is not JSON (it comes back +0) and state must round-trip.
    gainSum[i] = p.valueSmoothing * gainSum[i]! + gain || 0;
    servedSum[i] = p.valueSmoothing * servedSum[i]! + served;
    // Σc²: the previous newest eval's coefficient −γ becomes 1 − γ, the new eval enters with −1
    // (the first gain: +1 and −1).
    coef2Sum[i] = (gainCount[i] ?? 0) > 0 ? g2 * coef2Sum[i]! - 2 * p.valueSmoothing + 2 : 2;
    gainCount[i] = g2 * (gainCount[i] ?? 0) + 1;
    // Measurement noise from successive differences of the interval gains: a smooth
    // trend barely enters, the probes' noise does (von Neumann's estimator).
    const lg = lastGain[i];
    diff2Sum[i] = g2 * (diff2Sum[i] ?? 0);
    diffCount[i] = g2 * (diffCount[i] ?? 0);
    if (lg !== null && lg !== undefined) {
      diff2Sum[i] = diff2Sum[i]! + (gain - lg) ** 2;
      diffCount[i] = diffCount[i]! + 1;
    }
    lastGain[i] = gain || 0;
    value[i] = (gainSum[i]! / servedSum[i]!) * 1000 || 0;
  }
  let { beta, P, objMin, resVar } = st;
  if (ctx.objective) {
    let num = 0;
    let wsum = 0;
    ctx.objective.forEach((w, i) => {
      const e = ev[i];
      if (w > 0 && e !== null && e !== undefined && Number.isFinite(e)) {
        num += w * e;
        wsum += w;
      }
    });
    if (wsum > 0) {
      const o = num / wsum;
      if (objMin === null) objMin = o;
      else {
        // Raw decrease (not the running-min one): its noise is zero-mean, which the
        // regression needs; clipping at 0 would bias every β upwards.
        const y = objMin - o;
        objMin = o;
        const x = st.sinceEval.map((s) => s / 1000);
        let pred = 0;
        for (let j = 0; j < K; j++) pred += x[j]! * (beta[j] ?? 0);
        const e2 = (y - pred) ** 2;
        if (Number.isFinite(e2)) resVar = st.evals <= 2 ? e2 : 0.9 * resVar + 0.1 * e2;
        const r = rlsStep(beta, P, x, y, p.rlsForget);
        beta = r.beta;
        P = r.P;
      }
    }
  }
  const next: MixflowState = { minEval, lastEval, value, gainSum, servedSum, diff2Sum, diffCount, gainCount, lastGain, coef2Sum, sinceEval: new Array<number>(K).fill(0), objMin, beta, P, resVar, evals: st.evals + 1, evalDue: st.evalDue, ...(st.shufGap ? { shufGap: st.shufGap } : {}) };
  // Only the "ratio" rule holds ratios; the default's journal carries no constant array of 1s.
  if (p.rule !== "ratio") return next;
  const carried: MixflowState = st.heldRatio ? { ...next, heldRatio: st.heldRatio } : next;
  return { ...next, heldRatio: ratioState(ctx, p, carried, ctx.objective !== null && next.evals >= 3).ratio };
}

/** Which signal moved which domain: the probe learnability extremes of this eval. */
export function mixflowReason(ctx: StrategyContext, st: MixflowState): string {
  const known = st.value.map((v, i) => ({ v, i })).filter((x): x is { v: number; i: number } => x.v !== null);
  if (known.length === 0) return "eval: first probe losses (priors only)";
  known.sort((a, b) => b.v - a.v);
  const name = (i: number) => ctx.domains[i]?.name ?? String(i);
  const hi = known[0]!;
  const lo = known[known.length - 1]!;
  const base = `probe learnability per 1000 samples: highest ${name(hi.i)} ${hi.v.toFixed(3)}, lowest ${name(lo.i)} ${lo.v.toFixed(3)}`;
  const gaps = (st.shufGap ?? []).map((g, i) => ({ g, i })).filter((x): x is { g: number; i: number } => x.g !== null);
  if (gaps.length === 0) return base;
  gaps.sort((a, b) => a.g - b.g);
  return `${base}; order worth least to ${name(gaps[0]!.i)} (${gaps[0]!.g.toFixed(3)} nats)`;
}

export const mixflowStrategy: Strategy<MixflowParams, MixflowState> = {
  name: "mixflow",
  summary: "Default adaptive mix: running-min probe learnability × repetition penalty × compressibility prior, objective-aware, with floors and pins.",
  usesEval: true,
  structureProbes: (p) => p.structure,
  params,
  init(ctx, p) {
    const K = ctx.domains.length;
    const st: MixflowState = {
      minEval: new Array<number | null>(K).fill(null),
      lastEval: new Array<number | null>(K).fill(null),
      value: new Array<number | null>(K).fill(null),
      gainSum: new Array<number>(K).fill(0),
      servedSum: new Array<number>(K).fill(0),
      diff2Sum: new Array<number>(K).fill(0),
      diffCount: new Array<number>(K).fill(0),
      gainCount: new Array<number>(K).fill(0),
      lastGain: new Array<number | null>(K).fill(null),
      coef2Sum: new Array<number>(K).fill(0),
      sinceEval: new Array<number>(K).fill(0),
      objMin: null,
      beta: ctx.objective ? new Array<number>(K).fill(0) : [],
      P: ctx.objective ? eye(K, 100) : [],
      resVar: 0,
      evals: 0,
      evalDue: 1 + 2 * p.evalEvery,
    };
    return { state: st, weights: mixflowWeights(ctx, p, st, new Array<number>(K).fill(0)), requestEvalIn: 1 };
  },
  update(ctx, p, state, sig: StepSignals) {
    let st: MixflowState = { ...state, sinceEval: state.sinceEval.map((s, i) => s + (sig.served[i] ?? 0)) };
    const ev = sig.evalLoss;
    // With the structure signal an eval step's parity is its kind: odd = shuffled probes.
    const regular = (k: number): number => (p.structure ? toParity(sig.step, k, 0) : k);
    if (ev && ev.some((e) => e !== null && Number.isFinite(e))) {
      if (p.structure && sig.step % 2 === 1) {
        st = { ...foldStructure(p, st, ev, sig.step), evalDue: sig.step + 2 * p.evalEvery };
        return { state: st, weights: mixflowWeights(ctx, p, st, sig.servedTotal), requestEvalIn: regular(p.evalEvery), reason: mixflowReason(ctx, st) };
      }
      st = { ...foldEval(ctx, p, st, ev, sig.step, sig.servedTotal), evalDue: sig.step + 2 * p.evalEvery };
      // From structureFrom on, every structureEvery-th eval is followed at once by a shuffled one.
      const shuffledNext = p.structure && sig.step >= p.structureFrom && st.evals % p.structureEvery === 0;
      const next = shuffledNext ? toParity(sig.step, 1, 1) : regular(p.evalEvery);
      return { state: st, weights: mixflowWeights(ctx, p, st, sig.servedTotal), requestEvalIn: next, reason: mixflowReason(ctx, st) };
    }
    if (sig.step >= st.evalDue) {
      // The requested eval never came (trainer skipped it): ask again (an in-order one).
      st = { ...st, evalDue: sig.step + 2 * p.evalEvery };
      return { state: st, weights: null, requestEvalIn: regular(1) };
    }
    return { state: st, weights: null };
  },
};
