/**
 * The strategy context of a run: derived from its config and its domains' info only, so
 * the live server and offline replay (`mixflow replay simulate`) hand strategies exactly
 * the same context.
 */
import type { RunConfig } from "../config/schema.js";
import type { DomainInfo, StrategyContext } from "../../strategies/types.js";

export function strategyContext(cfg: RunConfig, domains: readonly DomainInfo[]): StrategyContext {
  return {
    domains,
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    objective: objectiveVector(cfg, domains.map((d) => d.name)),
  };
}

function objectiveVector(cfg: RunConfig, names: readonly string[]): number[] | null {
  if (!cfg.objective) return null;
  const raw = names.map((n) => cfg.objective![n] ?? 0);
  const s = raw.reduce((a, b) => a + b, 0);
  return s > 0 ? raw.map((x) => x / s) : null;
}
