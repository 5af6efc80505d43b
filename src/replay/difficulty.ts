/**
 * The difficulty orders of a recorded curriculum run, recomputed from its data: the batch
 * planner of a run whose domains declare difficulty (difficultyField / difficultyFile)
 * serves samples in that order, so verify and export must rebuild it with them — without,
 * every step of a competence run replays wrong. Runs without difficulty need no data.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadDomains } from "../runs/domains.js";
import type { RunHistory } from "./history.js";

/** Undefined when no domain declares difficulty. `baseDir`: what the run's relative paths resolve against. */
export function difficultyOrders(h: RunHistory, baseDir: string): (Uint32Array | null)[] | undefined {
  const declares = h.config.domains.some((d) => {
    const t = d.train as { difficultyField?: string; difficultyFile?: string };
    return Boolean(t.difficultyField || t.difficultyFile);
  });
  if (!declares) return undefined;
  // Index caches go to a scratch folder: never into the server's data dir.
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-replay-"));
  try {
    const domains = loadDomains(h.config, { cacheDir, baseDir });
    for (const d of domains) {
      d.train.close();
      d.eval?.close();
    }
    return domains.map((d) => d.plan.difficultyOrder);
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}
