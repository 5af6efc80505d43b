/**
 * stages: domain stages — ordered phases, each with its own weights, like a piecewise
 * schedule but named, and optionally advancing on a condition. Staged pretraining is common
 * practice (e.g. a general phase, then an annealing phase on high-quality domains, as in
 * Llama 3, arXiv 2407.21783, and MiniCPM, arXiv 2404.06395); there is no single paper rule.
 *
 * Rule: stage i is in force until the first of
 *   - step `untilStep` (absolute step at which the next stage starts), or
 *   - `untilLoss`: the mean over the named domains of their smoothed training loss
 *     (per-domain EMA with factor `smoothing`, each named domain counted equally, all of them
 *     seen at least once) drops below `below`.
 * The last stage has no end. Several ends met at once advance several stages.
 *
 * Versions: when no stage has a loss condition, every stage boundary is known in advance and
 * `init` returns them as `planned` versions (exact steps, no update lag). Otherwise stages
 * advance in `update`, and a stage's weights take effect at the server's next free step.
 *
 * Params: `stages` [{ name?, weights: {domain: w}, untilStep?, untilLoss?: { domains, below } }]
 * (every stage but the last needs an end), `smoothing` 0.9 (EMA of per-domain step losses).
 */
import { z } from "zod";
import type { PlannedVersion, StepSignals, Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { weightsFromMap } from "./static.js";

const stage = z
  .object({
    name: z.string().optional(),
    weights: z.record(z.string(), z.number().finite().nonnegative()),
    untilStep: z.number().int().positive().optional(),
    untilLoss: z
      .object({ domains: z.array(z.string()).min(1), below: z.number().finite() })
      .strict()
      .optional(),
  })
  .strict();

const params = z
  .object({
    stages: z
      .array(stage)
      .min(1)
      .max(10_000)
      .refine((ss) => ss.slice(0, -1).every((s) => s.untilStep !== undefined || s.untilLoss !== undefined), {
        message: "every stage but the last needs untilStep or untilLoss",
      }),
    smoothing: z.number().finite().min(0).max(0.9999).default(0.9),
  })
  .strict();

export type StagesParams = z.infer<typeof params>;

export interface StagesState {
  stage: number;
  /** EMA of each domain's mean training loss; null until the domain is seen. */
  loss: (number | null)[];
}

function stageWeights(ctx: StrategyContext, p: StagesParams, i: number): number[] {
  return finalizeWeights(
    weightsFromMap(
      ctx.domains.map((d) => d.name),
      p.stages[i]!.weights,
    ),
    ctx.domains,
  );
}

function hasLossConditions(p: StagesParams): boolean {
  return p.stages.some((s) => s.untilLoss !== undefined);
}

/** The smoothed per-domain losses after one step's signals. */
export function smoothLosses(prev: readonly (number | null)[], signals: StepSignals, beta: number): (number | null)[] {
  return prev.map((old, i) => {
    const c = signals.count[i] ?? 0;
    const s = signals.lossSum[i] ?? 0;
    if (!(c > 0) || !Number.isFinite(s)) return old;
    const m = s / c;
    return old === null ? m : beta * old + (1 - beta) * m;
  });
}

/** Whether stage i has ended at the version boundary after `step`. */
function ended(ctx: StrategyContext, p: StagesParams, i: number, step: number, loss: readonly (number | null)[]): boolean {
  const s = p.stages[i]!;
  if (i === p.stages.length - 1) return false;
  if (s.untilStep !== undefined && step + 1 >= s.untilStep) return true;
  if (s.untilLoss) {
    const idx = s.untilLoss.domains.map((n) => ctx.domains.findIndex((d) => d.name === n));
    const vals = idx.map((j) => (j >= 0 ? loss[j] : null));
    if (vals.some((v) => v === null || v === undefined)) return false;
    const mean = (vals as number[]).reduce((a, b) => a + b, 0) / vals.length;
    return mean < s.untilLoss.below;
  }
  return false;
}

export const stagesStrategy: Strategy<StagesParams, StagesState> = {
  name: "stages",
  summary: "Domain stages: ordered phases of weights, each ending at a step or when named domains' loss drops below a threshold.",
  params,
  init(ctx, p) {
    const state: StagesState = { stage: 0, loss: ctx.domains.map(() => null) };
    if (hasLossConditions(p)) return { state, weights: stageWeights(ctx, p, 0) };
    // Step-only stages: every boundary is known now.
    const planned: PlannedVersion[] = [];
    const bounds = [...new Set(p.stages.slice(0, -1).map((x) => x.untilStep!))].filter((b) => b > 0).sort((a, b) => a - b);
    let current = stageAtStep(p, 0);
    state.stage = current;
    for (const b of bounds) {
      const st = stageAtStep(p, b);
      if (st !== current) planned.push({ fromStep: b, weights: stageWeights(ctx, p, st) });
      current = st;
    }
    const first = stageWeights(ctx, p, stageAtStep(p, 0));
    return { state, weights: first, planned };
  },
  update(ctx, p, state, signals) {
    if (!hasLossConditions(p)) return { state, weights: null };
    const loss = smoothLosses(state.loss, signals, p.smoothing);
    let stage = state.stage;
    while (ended(ctx, p, stage, signals.step, loss)) stage++;
    const next = { stage, loss };
    return { state: next, weights: stage !== state.stage ? stageWeights(ctx, p, stage) : null };
  },
};

/**
 * The stage in force at step t for step-only stages: the first stage whose untilStep is
 * after t (an earlier-ending stage listed later is thereby skipped), else the last.
 */
export function stageAtStep(p: StagesParams, t: number): number {
  for (let i = 0; i < p.stages.length - 1; i++) if ((p.stages[i]!.untilStep ?? Infinity) > t) return i;
  return p.stages.length - 1;
}
