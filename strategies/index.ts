/**
 * The strategy registry: name → strategy. The server, replay and benchmarks look
 * strategies up here; adding a strategy is one file plus one line below.
 */
import type { AnyStrategy } from "./types.js";
import { staticStrategy } from "./static.js";
import { temperatureStrategy } from "./temperature.js";
import { scheduleStrategy } from "./schedule.js";
import { replayStrategy } from "./replay.js";
import { exp3Strategy } from "./exp3.js";
import { exp3sStrategy } from "./exp3s.js";
import { thompsonStrategy } from "./thompson.js";
import { mixflowStrategy } from "./mixflow.js";
import { doremiStrategy } from "./doremi.js";
import { aioliStrategy } from "./aioli.js";
import { regmixStrategy } from "./regmix.js";
import { competenceStrategy } from "./competence.js";
import { selfPacedStrategy } from "./self-paced.js";
import { stagesStrategy } from "./stages.js";
import { adoStrategy } from "./ado.js";

export const STRATEGIES: ReadonlyMap<string, AnyStrategy> = new Map<string, AnyStrategy>(
  [
    staticStrategy,
    temperatureStrategy,
    scheduleStrategy,
    replayStrategy,
    exp3Strategy,
    exp3sStrategy,
    thompsonStrategy,
    mixflowStrategy,
    doremiStrategy,
    aioliStrategy,
    regmixStrategy,
    competenceStrategy,
    selfPacedStrategy,
    stagesStrategy,
    adoStrategy,
  ].map((s) => [s.name, s]),
);

export function getStrategy(name: string): AnyStrategy | undefined {
  return STRATEGIES.get(name);
}

export type { Strategy, StrategyContext, StepSignals, StrategyOutput, DomainInfo, AnyStrategy } from "./types.js";
