/**
 * The strategy registry: name → strategy. The server, replay and benchmarks look
 * strategies up here; adding a strategy is one file plus one line below.
 */
import type { AnyStrategy } from "./types.js";
import { staticStrategy } from "./static.js";
import { temperatureStrategy } from "./temperature.js";
import { scheduleStrategy } from "./schedule.js";
import { exp3Strategy } from "./exp3.js";
import { exp3sStrategy } from "./exp3s.js";
import { thompsonStrategy } from "./thompson.js";
import { mixflowStrategy } from "./mixflow.js";

export const STRATEGIES: ReadonlyMap<string, AnyStrategy> = new Map<string, AnyStrategy>(
  [
    staticStrategy,
    temperatureStrategy,
    scheduleStrategy,
    exp3Strategy,
    exp3sStrategy,
    thompsonStrategy,
    mixflowStrategy,
  ].map((s) => [s.name, s]),
);

export function getStrategy(name: string): AnyStrategy | undefined {
  return STRATEGIES.get(name);
}

export type { Strategy, StrategyContext, StepSignals, StrategyOutput, DomainInfo, AnyStrategy } from "./types.js";
