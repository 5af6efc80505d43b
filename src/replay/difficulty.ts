/**
 * The difficulty orders of a recorded curriculum run, recomputed from its data: the batch
 * planner of a run whose domains declare difficulty (difficultyField / difficultyFile)
 * serves samples in that order, so verify and export must rebuild it with them — without,
 * every step of a competence run replays wrong. Runs without difficulty need no data.
 */
import type { RunHistory } from "./history.js";
import { withRunData } from "./data.js";

/** Whether any domain of the run declares difficulty (its planner needs the data). */
export function declaresDifficulty(h: RunHistory): boolean {
  return h.config.domains.some((d) => {
    const t = d.train as { difficultyField?: string; difficultyFile?: string };
    return Boolean(t.difficultyField || t.difficultyFile);
  });
}

/** Undefined when no domain declares difficulty. `baseDir`: what the run's relative paths resolve against. */
export function difficultyOrders(h: RunHistory, baseDir: string): (Uint32Array | null)[] | undefined {
  if (!declaresDifficulty(h)) return undefined;
  return withRunData(h, baseDir, (domains) => domains.map((d) => d.plan.difficultyOrder));
}
