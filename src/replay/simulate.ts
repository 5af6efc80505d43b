/**
 * `mixflow replay simulate`: run any strategy, with any parameters, over a recorded run's
 * signals, offline — the weights timeline it would have produced (a counterfactual).
 * Steps are folded exactly as the server folded them (same slices, same served counts from
 * the recorded versions, same strategy context), so simulating the run's own strategy
 * reproduces its recorded weights bit for bit.
 */
import { parseOrThrow } from "../config/validate.js";
import { invalid } from "../errors.js";
import { foldStep } from "../runs/aggregator.js";
import { strategyContext } from "../runs/context.js";
import type { SignalsEvent } from "../history/events.js";
import { getStrategy, STRATEGIES } from "../../strategies/index.js";
import { finalizeWeights } from "../../strategies/util/weights.js";
import { plannerFor, type RunHistory } from "./history.js";

/**
 * One weights decision of a re-simulated strategy: not a committed Version (no id, no
 * from_step: the offline fold decides nothing about serving), only what the strategy
 * would have set after an aggregated step.
 */
export interface SimulatedDecision {
  /** The aggregated step whose update produced these weights (-1: init). */
  step: number;
  weights: number[];
}

export function simulate(h: RunHistory, strategyName: string, rawParams: unknown): SimulatedDecision[] {
  const strategy = getStrategy(strategyName);
  if (!strategy) throw invalid(`unknown strategy "${strategyName}"; known: ${[...STRATEGIES.keys()].join(", ")}`);
  const params = parseOrThrow(strategy.params, rawParams ?? {}, `strategy "${strategyName}" params`);
  if (!h.domains) throw invalid(`run "${h.runId}": the journal does not record domain info; cannot simulate`);
  const ctx = strategyContext(h.config, h.domains);
  const planner = plannerFor(h);
  const bySlice = new Map<string, SignalsEvent>();
  for (const s of h.signals) bySlice.set(`${s.step}:${s.offset}`, s);
  const init = strategy.init(ctx, params);
  const out: SimulatedDecision[] = [{ step: -1, weights: finalizeWeights(init.weights, ctx.domains) }];
  let state = init.state;
  const g = planner.newBatch();
  for (const a of h.aggregated) {
    const slices = a.slices.map((o) => bySlice.get(`${a.step}:${o}`)).filter((s): s is SignalsEvent => s !== undefined);
    let planned = false;
    const signals = foldStep(planner, a.step, slices, () => {
      if (!planned) planner.plan(a.step, g);
      planned = true;
      return g;
    });
    const r = strategy.update(ctx, params, state, signals);
    state = r.state;
    if (r.weights) out.push({ step: a.step, weights: finalizeWeights(r.weights, ctx.domains) });
  }
  return out;
}

/** CSV of a simulated timeline: step, then one column per domain. */
export function simulatedCsv(h: RunHistory, vs: readonly SimulatedDecision[]): string {
  const names = h.config.domains.map((d) => d.name);
  return [["step", ...names].join(","), ...vs.map((v) => [v.step, ...v.weights.map((w) => w.toPrecision(17))].join(","))].join("\n") + "\n";
}
