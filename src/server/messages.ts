/**
 * Building response messages (proto-loader object shapes, snake_case) from run state.
 */
import type { Preparation, Run } from "../runs/index.js";
import type { Version } from "../history/events.js";

export interface WeightsVersionMsg {
  version: number;
  from_step: number;
  weights: number[];
  reason: string;
  committed_at_step: number;
  competence: number[];
}

export function versionMsg(v: Version): WeightsVersionMsg {
  return {
    version: v.version,
    from_step: v.fromStep,
    weights: [...v.weights],
    reason: v.reason,
    committed_at_step: Math.max(0, v.committedAtStep),
    competence: v.competence ? [...v.competence] : [],
  };
}

export function runInfoMsg(run: Run): Record<string, unknown> {
  const c = run.config;
  const first = run.domains[0]!.train;
  return {
    run_id: run.id,
    state: run.state === "open" ? "RUN_STATE_OPEN" : "RUN_STATE_CLOSED",
    strategy: c.strategy.name,
    batch_size: c.batchSize,
    world_size: c.worldSize,
    seed: c.seed,
    max_steps: c.maxSteps,
    payload: first.kind === "text" ? "PAYLOAD_KIND_TEXT" : "PAYLOAD_KIND_TOKENS",
    domains: run.domains.map((d) => ({
      name: d.name,
      train_samples: d.train.size,
      eval_samples: d.eval?.size ?? 0,
      min_weight: d.info.minWeight,
      max_weight: d.info.maxWeight,
      pinned: d.info.pinned,
    })),
    current: versionMsg(run.currentVersion),
    frontier: run.servedBound - 1,
    last_aggregated_step: run.lastAggregated,
    resolved_config_json: JSON.stringify(c),
    seq_len: first.windowTokens !== null ? first.windowTokens - 1 : 0,
  };
}

/** GetRun while CreateRun is still preparing the run's data (worker threads). */
export function preparingInfoMsg(id: string, p: Preparation): Record<string, unknown> {
  return {
    run_id: id,
    state: "RUN_STATE_PREPARING",
    frontier: -1,
    last_aggregated_step: -1,
    preparation: {
      phase: p.phase,
      domain: p.domain,
      domains_done: p.domainsDone,
      domains_total: p.domainsTotal,
      elapsed_seconds: (Date.now() - p.startedAt) / 1000,
    },
  };
}
