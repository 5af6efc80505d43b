/**
 * A simulated multi-domain learner, for testing and benchmarking mixing strategies without
 * training anything. It is deliberately small but has the failure modes that matter for
 * data mixing:
 *
 * - Clean domains follow a power law in *effective* samples:
 *     L_d(n) = floor_d + A_d · (n_eff_d + n0_d)^(−α_d),   n_eff_d = Σ_j T[d][j] · u_j
 *   where T is a transfer matrix (T[d][d] = 1; off-diagonal = how much training on j helps
 *   d) and u_j is the useful (unique) content of j seen so far:
 *     u_j = U_j · (1 − exp(−served_j / U_j)),   U_j = the domain's unique clusters.
 *   Repetition therefore has diminishing value: once a domain's unique content has been
 *   seen a few times, more samples add almost nothing.
 * - A pure-noise domain (`kind: "noise"`): A = 0, so its loss stays at a high floor
 *   whatever is served; it transfers nothing. A strategy rewarded by raw loss loves it.
 * - A boilerplate / near-duplicate domain (`kind: "duplicate"`): few unique clusters, so
 *   its effective samples saturate at U, and it transfers ~nothing. Its *training* loss is
 *   memorisation, which keeps falling with repeats:
 *     L_train = memFloor + (L_gen − memFloor) · (1 + served / (memK · U))^(−memBeta)
 *   so loss-decrease ("learning progress") and excess-loss signals look great on it.
 * - Reporting noise (seeded, Gaussian): the per-domain training-loss sum of a step gets
 *   noise with std `lossNoise · sqrt(count)`; eval losses get std `evalNoise`.
 * - Eval losses on held-out probes: clean domains report L_gen; the noise domain stays at
 *   its floor; the duplicate domain depends on `probes`: "shared" (default, the realistic
 *   hard case: the eval split shares near-duplicate clusters with train, so its eval
 *   loss drops with memorisation exactly like the train loss) or "clusterHeldOut" (probes
 *   keep the clusters out, so eval improves only with unique content, L_gen(n_eff)).
 *
 * The objective (what a run actually cares about) is the noiseless generalisation loss:
 * the `objective`-weighted mean of L_gen over domains, or, when the scenario has no
 * objective, the plain mean over the `real` domains (clean ones; noise and boilerplate
 * are not what anyone wants the model to be good at).
 *
 * `simulate` runs a real strategy through `init`/`update` with the server's semantics:
 * integer per-step counts by low-discrepancy apportionment of the weights, aggregated
 * signals every `updateEvery` steps, a new version effective `lag` steps after the step
 * whose signals produced it (default: from the next step), eval losses reported on the
 * step `requestEvalIn` steps after the request (with structure probes, odd eval steps carry
 * the shuffled probes' losses, `shuffledLosses`; with `updateEvery` > 1 the strategy reads
 * an eval's kind off the step of the update that delivers it).
 */
import type { AnyStrategy, DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { makeRng } from "../../strategies/util/rng.js";
import { measuredStats } from "./text.js";

/** The kinds of simulated domain. */
export type SimDomainKind = "clean" | "noise" | "duplicate";

/** One simulated domain: its learning curve and what a strategy is told about it. */
export interface SimDomain {
  readonly name: string;
  readonly kind: SimDomainKind;
  /** Irreducible loss. */
  readonly floor: number;
  /** Power-law amplitude (0 for noise: nothing to learn). */
  readonly A: number;
  /** Power-law exponent. */
  readonly alpha: number;
  /** Power-law offset in samples (loss at 0 samples is floor + A·n0^−α). */
  readonly n0: number;
  /**
   * Unique content in samples (near-duplicate clusters): the learner's truth. What a strategy
   * is told (DomainInfo.uniqueClusters) is the real estimator's count on generated text of
   * this kind (test/sim/text.ts).
   */
  readonly uniqueClusters: number;
  /** Samples per epoch, reported as DomainInfo.trainSamples. */
  readonly trainSamples: number;
  /** Descriptive only: DomainInfo.compressRatio is measured on generated text (test/sim/text.ts). */
  readonly compressRatio: number;
  /** Std of one sample's reported training loss. */
  readonly lossNoise: number;
  /** Counted in the default objective (mean over real domains). */
  readonly real: boolean;
  /** Duplicate domains: memorised-loss floor, repeats per unit of memorisation, exponent. */
  readonly memFloor?: number;
  readonly memK?: number;
  readonly memBeta?: number;
  readonly minWeight?: number;
  readonly maxWeight?: number;
  readonly pinned?: boolean;
}

/** A named world: domains, transfer between them, and optionally the user's objective. */
export interface Scenario {
  readonly name: ScenarioName | string;
  readonly description: string;
  readonly domains: readonly SimDomain[];
  /** T[d][j]: effective samples of d gained per unique sample of j (T[d][d] = 1). */
  readonly transfer: readonly (readonly number[])[];
  /** Objective weights per domain (sum 1), passed to strategies as ctx.objective; null = none. */
  readonly objective: readonly number[] | null;
  /** What the duplicate domain's held-out eval measures (see the file comment). */
  readonly probes: "shared" | "clusterHeldOut";
  /** Std of a reported eval loss. */
  readonly evalNoise: number;
}

export type ScenarioName = "noise" | "duplicates" | "both" | "transfer" | "target" | "clean";
export const SCENARIO_NAMES: readonly ScenarioName[] = ["noise", "duplicates", "both", "transfer", "target", "clean"];

const BIG = 1_000_000;

/** A clean, web-like domain; overrides tweak one aspect. */
export function cleanDomain(name: string, o: Partial<SimDomain> = {}): SimDomain {
  return {
    name,
    kind: "clean",
    floor: 2,
    A: 8,
    alpha: 0.35,
    n0: 100,
    uniqueClusters: BIG,
    trainSamples: BIG,
    compressRatio: 0.38,
    lossNoise: 0.5,
    real: true,
    ...o,
  };
}

/** Random noise: loss stuck at a high floor, incompressible, transfers nothing. */
export function noiseDomain(name = "noise", o: Partial<SimDomain> = {}): SimDomain {
  return {
    name,
    kind: "noise",
    floor: 7,
    A: 0,
    alpha: 0.35,
    n0: 100,
    uniqueClusters: BIG,
    trainSamples: BIG,
    compressRatio: 0.97,
    lossNoise: 1.5,
    real: false,
    ...o,
  };
}

/** Boilerplate / near-duplicates: 300 unique clusters in 200k samples, memorised with repeats. */
export function duplicateDomain(name = "boilerplate", o: Partial<SimDomain> = {}): SimDomain {
  return {
    name,
    kind: "duplicate",
    floor: 2.5,
    A: 8,
    alpha: 0.35,
    n0: 100,
    uniqueClusters: 300,
    trainSamples: 200_000,
    compressRatio: 0.08,
    lossNoise: 0.3,
    real: false,
    memFloor: 0.2,
    memK: 1,
    memBeta: 0.7,
    ...o,
  };
}

/** Transfer matrix with 1 on the diagonal and `off` between clean domains (0 to/from junk). */
export function transferMatrix(domains: readonly SimDomain[], off: number): number[][] {
  return domains.map((d, i) =>
    domains.map((e, j) => (i === j ? 1 : d.kind === "clean" && e.kind === "clean" ? off : e.kind === "duplicate" ? 0.01 : 0)),
  );
}

function scenarioOf(
  name: ScenarioName,
  description: string,
  domains: SimDomain[],
  transfer?: number[][],
  objective: number[] | null = null,
): Scenario {
  return {
    name,
    description,
    domains,
    transfer: transfer ?? transferMatrix(domains, 0.1),
    objective,
    probes: "shared",
    evalNoise: 0.02,
  };
}

/** Build a named scenario. Each call returns a fresh object. */
export function scenario(name: ScenarioName): Scenario {
  switch (name) {
    case "noise":
      return scenarioOf("noise", "4 clean domains + 1 pure-noise domain (unlearnable, high loss)", [
        cleanDomain("web"),
        cleanDomain("books"),
        cleanDomain("code"),
        cleanDomain("wiki"),
        noiseDomain(),
      ]);
    case "duplicates":
      return scenarioOf("duplicates", "4 clean domains + 1 boilerplate domain (300 clusters, memorised fast)", [
        cleanDomain("web"),
        cleanDomain("books"),
        cleanDomain("code"),
        cleanDomain("wiki"),
        duplicateDomain(),
      ]);
    case "both":
      return scenarioOf("both", "3 clean domains + 1 noise + 1 boilerplate in one run", [
        cleanDomain("web"),
        cleanDomain("books"),
        cleanDomain("code"),
        noiseDomain(),
        duplicateDomain(),
      ]);
    case "transfer": {
      const ds = [cleanDomain("general"), cleanDomain("a"), cleanDomain("b"), cleanDomain("c"), cleanDomain("d")];
      const t = transferMatrix(ds, 0.05);
      for (let d = 1; d < ds.length; d++) t[d]![0] = 0.5;
      return scenarioOf("transfer", "5 clean domains; 'general' transfers 0.5 to every other domain", ds, t);
    }
    case "target": {
      const ds = [cleanDomain("target"), cleanDomain("related1"), cleanDomain("related2"), cleanDomain("unrelated1"), cleanDomain("unrelated2")];
      const t = transferMatrix(ds, 0);
      t[0]![1] = 0.5;
      t[0]![2] = 0.3;
      return scenarioOf("target", "objective = 'target'; related1/2 transfer 0.5/0.3 to it, unrelated 0", ds, t, [1, 0, 0, 0, 0]);
    }
    case "clean":
      return scenarioOf("clean", "4 equally useful clean domains: uniform is about optimal", [
        cleanDomain("web"),
        cleanDomain("books"),
        cleanDomain("code"),
        cleanDomain("wiki"),
      ]);
  }
}

/** The DomainInfo list a strategy sees for a scenario (eval split of 1000 samples each). */
export function domainInfos(sc: Scenario): DomainInfo[] {
  return sc.domains.map((d) => ({ d, m: measuredStats(d.kind, d.trainSamples, d.uniqueClusters) })).map(({ d, m }) => ({
    name: d.name,
    trainSamples: d.trainSamples,
    evalSamples: 1000,
    size: d.trainSamples * 2000,
    minWeight: d.minWeight ?? 0,
    maxWeight: d.maxWeight ?? 1,
    pinned: d.pinned ?? false,
    uniqueClusters: m.uniqueClusters,
    compressRatio: m.compressRatio,
  }));
}

/** The StrategyContext of a simulated run. */
export function makeContext(sc: Scenario, batchSize: number, seed: number): StrategyContext {
  return { domains: domainInfos(sc), batchSize, seed, objective: sc.objective };
}

/** Unique content of a domain seen after `served` samples: U·(1 − e^(−served/U)). */
export function uniqueSeen(d: SimDomain, served: number): number {
  return d.uniqueClusters * -Math.expm1(-served / d.uniqueClusters);
}

/** Generalisation loss per domain (cluster-held-out, noiseless) given samples served so far. */
export function generalizationLosses(sc: Scenario, served: readonly number[]): number[] {
  const u = sc.domains.map((d, j) => uniqueSeen(d, served[j] ?? 0));
  return sc.domains.map((d, i) => {
    let nEff = 0;
    const row = sc.transfer[i]!;
    for (let j = 0; j < u.length; j++) nEff += (row[j] ?? 0) * u[j]!;
    return d.floor + d.A * Math.pow(nEff + d.n0, -d.alpha);
  });
}

/** Noiseless training loss per domain (memorisation for duplicate domains). */
export function trainLosses(sc: Scenario, served: readonly number[]): number[] {
  const gen = generalizationLosses(sc, served);
  return sc.domains.map((d, i) => {
    if (d.kind !== "duplicate") return gen[i]!;
    const mf = d.memFloor ?? 0.2;
    const k = d.memK ?? 1;
    const b = d.memBeta ?? 0.7;
    return mf + (gen[i]! - mf) * Math.pow(1 + (served[i] ?? 0) / (k * d.uniqueClusters), -b);
  });
}

/** Noiseless held-out probe eval loss per domain (see `Scenario.probes`). */
export function evalLosses(sc: Scenario, served: readonly number[]): number[] {
  if (sc.probes === "clusterHeldOut") return generalizationLosses(sc, served);
  return trainLosses(sc, served);
}

/**
 * Noiseless loss on the probes with their symbols shuffled (a strategy's structure probes,
 * served on odd eval steps): what the domain's model knew before learning anything,
 * floor + A·n0^−α, since shuffling destroys what is learnt about order — but never below the
 * in-order loss. A noise domain (A = 0) loses nothing when shuffled.
 */
export function shuffledLosses(sc: Scenario, served: readonly number[]): number[] {
  const inOrder = evalLosses(sc, served);
  return sc.domains.map((d, i) => Math.max(inOrder[i]!, d.floor + d.A * Math.pow(d.n0, -d.alpha)));
}

/** The objective: objective-weighted mean generalisation loss, or the mean over real domains. */
export function objectiveLoss(sc: Scenario, served: readonly number[]): number {
  const gen = generalizationLosses(sc, served);
  if (sc.objective) return gen.reduce((a, l, i) => a + l * (sc.objective![i] ?? 0), 0);
  let s = 0;
  let n = 0;
  sc.domains.forEach((d, i) => {
    if (d.real) {
      s += gen[i]!;
      n++;
    }
  });
  return n > 0 ? s / n : 0;
}

/**
 * Integer counts for one step: the cumulative target Σ w·B per domain minus what was
 * already served, floored, with the remainder going to the largest fractional parts
 * (ties to the lower index). Bounded error, like the server's apportionment.
 */
export function apportion(weights: readonly number[], batchSize: number, cumTarget: number[], cumServed: readonly number[]): number[] {
  const n = weights.length;
  const want: number[] = [];
  for (let i = 0; i < n; i++) {
    cumTarget[i] = (cumTarget[i] ?? 0) + (weights[i] ?? 0) * batchSize;
    want.push(Math.max(0, cumTarget[i]! - (cumServed[i] ?? 0)));
  }
  const counts = want.map((x) => Math.floor(x));
  let left = batchSize - counts.reduce((a, b) => a + b, 0);
  if (left < 0) {
    // Over-served in the past (weights moved); take back from the largest counts.
    const order = counts.map((_, i) => i).sort((a, b) => counts[b]! - counts[a]! || a - b);
    for (let k = 0; left < 0; k = (k + 1) % n) {
      const i = order[k]!;
      if (counts[i]! > 0) {
        counts[i]!--;
        left++;
      }
    }
    return counts;
  }
  const order = want.map((_, i) => i).sort((a, b) => want[b]! - Math.floor(want[b]!) - (want[a]! - Math.floor(want[a]!)) || a - b);
  const anyPositive = weights.some((x) => x > 0);
  for (let k = 0; left > 0; k = (k + 1) % n) {
    const i = order[k]!;
    if (!anyPositive || (weights[i] ?? 0) > 0) {
      counts[i]!++;
      left--;
    }
  }
  return counts;
}

/** Options of one simulated run. */
export interface SimOptions {
  readonly steps: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Aggregate signals over this many steps before calling update (default 1, like the server). */
  readonly updateEvery?: number;
  /** A version produced from step s's signals takes effect at s + lag (default 1). */
  readonly lag?: number;
  /** Record the objective every this many steps (default 10; the last step is always recorded). */
  readonly recordEvery?: number;
}

/** One committed version of the weights. */
export interface SimVersion {
  readonly fromStep: number;
  readonly weights: readonly number[];
}

/** What a simulated run produced. */
export interface SimResult {
  readonly scenario: string;
  readonly strategy: string;
  /** Committed versions in order; the first is `init`'s at step 0. */
  readonly versions: readonly SimVersion[];
  /** Objective after each recorded step (`step` = steps done so far). */
  readonly objective: readonly { readonly step: number; readonly loss: number }[];
  readonly finalObjective: number;
  /** Samples served per domain over the run. */
  readonly servedTotal: readonly number[];
  /** Fraction of all samples that went to each domain. */
  readonly servedShare: readonly number[];
  /** Noiseless generalisation loss per domain at the end. */
  readonly finalLosses: readonly number[];
  /** Steps at which eval losses were reported. */
  readonly evalSteps: readonly number[];
}

/** Standard normal draws from a seeded uniform generator (Box–Muller). */
function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/**
 * Run `strategy` with `params` (raw; parsed with the strategy's zod schema) on a scenario.
 * Deterministic in (strategy, params, scenario, options).
 */
export function simulate(strategy: AnyStrategy, params: unknown, sc: Scenario, opts: SimOptions): SimResult {
  const p: unknown = strategy.params.parse(params ?? {});
  const K = sc.domains.length;
  const B = opts.batchSize;
  const updateEvery = Math.max(1, opts.updateEvery ?? 1);
  const lag = Math.max(1, opts.lag ?? 1);
  const recordEvery = Math.max(1, opts.recordEvery ?? 10);
  const ctx = makeContext(sc, B, opts.seed);
  const noise = gaussian(makeRng(opts.seed, 0x5111));
  // Structure probes: an odd eval step carries shuffled probes, and a pushed request keeps its parity.
  const structure = strategy.structureProbes?.(p) === true;

  const first = strategy.init(ctx, p);
  let state: unknown = first.state;
  const versions: SimVersion[] = [{ fromStep: 0, weights: first.weights.slice() }];
  for (const pv of first.planned ?? []) versions.push({ fromStep: pv.fromStep, weights: pv.weights.slice() });
  versions.sort((a, b) => a.fromStep - b.fromStep);
  const pendingEval = new Set<number>();
  if (first.requestEvalIn && first.requestEvalIn > 0) pendingEval.add(Math.round(first.requestEvalIn) - 1);

  const servedTotal = new Array<number>(K).fill(0);
  const cumTarget = new Array<number>(K).fill(0);
  const objective: { step: number; loss: number }[] = [{ step: 0, loss: objectiveLoss(sc, servedTotal) }];
  const evalSteps: number[] = [];
  let vi = 0;

  let lossSum = new Array<number>(K).fill(0);
  let count = new Array<number>(K).fill(0);
  let served = new Array<number>(K).fill(0);
  let evalLoss: (number | null)[] | null = null;

  for (let s = 0; s < opts.steps; s++) {
    while (vi + 1 < versions.length && versions[vi + 1]!.fromStep <= s) vi++;
    const w = versions[vi]!.weights;
    const c = apportion(w, B, cumTarget, servedTotal);
    const tl = trainLosses(sc, servedTotal);
    for (let d = 0; d < K; d++) {
      if (c[d]! === 0) continue;
      lossSum[d]! += Math.max(0, c[d]! * tl[d]! + sc.domains[d]!.lossNoise * Math.sqrt(c[d]!) * noise());
      count[d]! += c[d]!;
      served[d]! += c[d]!;
    }
    if (pendingEval.has(s)) {
      pendingEval.delete(s);
      evalSteps.push(s);
      const clean = structure && s % 2 === 1 ? shuffledLosses(sc, servedTotal) : evalLosses(sc, servedTotal);
      evalLoss = clean.map((l) => Math.max(0, l + sc.evalNoise * noise()));
    }
    for (let d = 0; d < K; d++) servedTotal[d]! += c[d]!;
    if ((s + 1) % recordEvery === 0 || s === opts.steps - 1) objective.push({ step: s + 1, loss: objectiveLoss(sc, servedTotal) });

    if ((s + 1) % updateEvery === 0 && s < opts.steps - 1) {
      const signals: StepSignals = {
        step: s,
        lossSum,
        count,
        refLossSum: null,
        evalLoss,
        served,
        samples: null,
        servedTotal: servedTotal.slice(),
      };
      const out = strategy.update(ctx, p, state, signals);
      state = out.state;
      if (out.weights) {
        // A new version replaces any planned version at or after its step.
        const from = s + lag;
        while (versions.length > vi + 1 && versions[versions.length - 1]!.fromStep >= from) versions.pop();
        versions.push({ fromStep: from, weights: out.weights.slice() });
      }
      if (out.requestEvalIn && out.requestEvalIn > 0) {
        const k = Math.round(out.requestEvalIn);
        const pushed = Math.max(lag, k);
        pendingEval.add(s + (structure && (pushed - k) % 2 === 1 ? pushed + 1 : pushed));
      }
      lossSum = new Array<number>(K).fill(0);
      count = new Array<number>(K).fill(0);
      served = new Array<number>(K).fill(0);
      evalLoss = null;
    }
  }
  const total = servedTotal.reduce((a, b) => a + b, 0);
  return {
    scenario: sc.name,
    strategy: strategy.name,
    versions,
    objective,
    finalObjective: objective[objective.length - 1]!.loss,
    servedTotal,
    servedShare: servedTotal.map((x) => (total > 0 ? x / total : 0)),
    finalLosses: generalizationLosses(sc, servedTotal),
    evalSteps,
  };
}

/** The first recorded step at which the objective is <= target, or null if never. */
export function stepsToReach(res: SimResult, target: number): number | null {
  for (const o of res.objective) if (o.loss <= target) return o.step;
  return null;
}

/**
 * How many steps `res` needs to reach `baseline`'s final objective, as a fraction of
 * the baseline's steps (< 1: faster than the baseline; null: never got there).
 */
export function stepsRatio(res: SimResult, baseline: SimResult): number | null {
  const target = baseline.finalObjective;
  const mine = stepsToReach(res, target);
  const theirs = stepsToReach(baseline, target);
  if (mine === null || theirs === null || theirs === 0) return null;
  return mine / theirs;
}

/** The weights in force at `step` in a result. */
export function weightsAt(res: SimResult, step: number): readonly number[] {
  let w = res.versions[0]!.weights;
  for (const v of res.versions) if (v.fromStep <= step) w = v.weights;
  return w;
}
