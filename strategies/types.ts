/**
 * The strategy interface: every mixing or curriculum strategy is a pure function from
 * (state, signals) to (state, weights). Purity is what makes journal recovery,
 * counterfactual replay and unit tests cheap: the server may call `update` again on the
 * journaled signals and must get bit-identical results.
 *
 * Rules every strategy follows:
 * - No I/O, no clocks, no Math.random: randomness comes from `ctx.seed` through
 *   `strategies/util/rng.ts`.
 * - State is plain JSON (numbers, strings, arrays, objects). It is journaled with each
 *   committed version and must round-trip through JSON.stringify/parse unchanged; NaN
 *   and Infinity are not JSON, so never keep them in state.
 * - Weights returned are finite, non-negative and sum to 1; use `finalizeWeights` from
 *   `strategies/util/weights.ts`, which also applies the per-domain bounds.
 */
import type { z } from "zod";

/** What a strategy knows about a domain; fixed for the life of a run. */
export interface DomainInfo {
  readonly name: string;
  /** Samples in one epoch of the train split. */
  readonly trainSamples: number;
  /** Samples in the eval split (0 if none). */
  readonly evalSamples: number;
  /** Approximate train size in bytes (text) or tokens (token files); used by temperature. */
  readonly size: number;
  readonly minWeight: number;
  readonly maxWeight: number;
  /** The user vouches for this domain: adaptive strategies keep at least its initial weight. */
  readonly pinned: boolean;
  /** Near-duplicate clusters among train samples (0 if unknown). */
  readonly uniqueClusters: number;
  /** Compressed/raw byte ratio of a sample of the domain (0 if unknown); noise ≈ 1. */
  readonly compressRatio: number;
  /**
   * Train samples held out as a carved, cluster-disjoint probe set (0 if none; absent in
   * journals written before holdouts existed). `trainSamples` already excludes them.
   */
  readonly heldOutSamples?: number;
}

/** Context handed to every call; derived from the run config, never changes. */
export interface StrategyContext {
  readonly domains: readonly DomainInfo[];
  readonly batchSize: number;
  readonly seed: number;
  /** Objective weights per domain index (sum 1), from the run's `objective`; null = none. */
  readonly objective: readonly number[] | null;
}

/**
 * Signals of one aggregated step (all ranks in, or the aggregation timeout passed).
 * Arrays are indexed by domain. Losses are validated finite and >= 0 before they get here.
 */
export interface StepSignals {
  readonly step: number;
  /** Sum of per-sample training losses per domain. */
  readonly lossSum: readonly number[];
  /** Number of samples summed per domain (0 = domain absent in this step's reports). */
  readonly count: readonly number[];
  /** Sum of reference-model losses per domain; null if none reported. */
  readonly refLossSum: readonly number[] | null;
  /**
   * Samples per domain whose slice sent reference losses (the divisor of `refLossSum`);
   * smaller than `count` when some ranks sent none. Absent/null: take `count`.
   */
  readonly refCount?: readonly number[] | null;
  /** Mean eval loss per domain; null entries where no eval loss was reported. */
  readonly evalLoss: readonly (number | null)[] | null;
  /** Samples drawn per domain in this step (from the plan, whatever was reported). */
  readonly served: readonly number[];
  /**
   * Per-sample training losses of the step, when the trainer reported them per sample
   * (null otherwise): parallel arrays, one entry per slot of the global batch that was
   * reported. For self-paced curricula; keep any state derived from it bounded.
   */
  readonly samples: {
    readonly domain: readonly number[];
    readonly sample: readonly number[];
    readonly loss: readonly number[];
    /** Per-sample reference loss, null where that rank sent none (absent in older signals). */
    readonly ref?: readonly (number | null)[];
  } | null;
  /** Total samples served per domain over the whole run, up to and including this step. */
  readonly servedTotal: readonly number[];
}

/** A version known in advance: weights that take effect at `fromStep`. */
export interface PlannedVersion {
  readonly fromStep: number;
  readonly weights: readonly number[];
  /** Curriculum competence in force from this version (see StrategyOutput.competence). */
  readonly competence?: readonly number[] | null;
}

/** Output of `init` and `update`. */
export interface StrategyOutput<S> {
  readonly state: S;
  /** New weights, or null to keep the current version (no new version is committed). */
  readonly weights: readonly number[] | null;
  /**
   * Ask the trainer for per-domain eval losses on the batch of this many steps from now
   * (0 or absent = no request). Used by strategies that need eval losses (aioli, doremi
   * with eval reference, the default strategy's probes).
   */
  readonly requestEvalIn?: number;
  /**
   * Curriculum: per domain, the fraction (0, 1] of the difficulty-ordered train split that
   * may be drawn (Platanios et al. competence). Omitted or null = the whole split. Only
   * domains that declare a difficulty use it; others ignore their entry.
   */
  readonly competence?: readonly number[] | null;
  /**
   * Why these weights, in the strategy's own words (which signal moved which domain);
   * journaled with the version and shown by `mixflow report`. Absent: "update at step N".
   */
  readonly reason?: string;
}

export interface Strategy<P, S> {
  readonly name: string;
  /** One-line description for `mixflow strategies` and docs. */
  readonly summary: string;
  /**
   * The strategy asks for eval losses on probe documents (`requestEvalIn`). A domain with
   * no eval split then gets a cluster-disjoint holdout carved from its train split
   * (src/sources/holdout.ts), unless its config says `holdout: "off"`.
   */
  readonly usesEval?: boolean;
  /**
   * With these params the strategy asks for structure probes: an eval on an odd step carries
   * the probes with their symbols shuffled, on an even step in order (src/runs/probes.ts), and
   * a pushed eval step keeps the parity asked for. The strategy reads the kind of an eval off
   * the parity of the step it arrives with.
   */
  readonly structureProbes?: (params: P) => boolean;
  /**
   * `update` never returns weights: the whole schedule is fixed at init. Such a run is
   * closed to adaptation, so requests far past the serving frontier (maxLookahead) are
   * harmless and allowed.
   */
  readonly fixed?: boolean;
  /** Parameters with their paper defaults; parse({}) must give the defaults. */
  readonly params: z.ZodType<P, z.ZodTypeDef, unknown>;
  /**
   * Initial state and weights (version 1). A strategy whose weights are known in advance
   * (schedule, transfer of a recorded run) also returns the later versions in `planned`;
   * the server commits them all at creation, before any step is served.
   */
  init(ctx: StrategyContext, params: P): StrategyOutput<S> & {
    readonly weights: readonly number[];
    readonly planned?: readonly PlannedVersion[];
  };
  /** Fold one aggregated step into the state; maybe propose new weights. Pure. */
  update(ctx: StrategyContext, params: P, state: S, signals: StepSignals): StrategyOutput<S>;
}

/** A strategy with its parameter and state types erased, as the registry holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStrategy = Strategy<any, any>;
