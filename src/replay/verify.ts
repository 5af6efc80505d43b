/**
 * `mixflow replay verify`: recompute every aggregated step's batch digest from the
 * recorded versions and compare it with the digest the server recorded when it served
 * that step. A mismatch means replay would not reproduce the run (changed data, changed
 * sampling code): it names the first step that differs.
 */
import { digestHex } from "../runs/run.js";
import { plannerFor, type RunHistory } from "./history.js";

export interface VerifyReport {
  checked: number;
  mismatches: { step: number; recorded: string; replayed: string }[];
}

/** `orders`: the run's difficulty orders (./difficulty.ts) when it is a curriculum run. */
export function verifyDigests(h: RunHistory, orders?: (Uint32Array | null)[]): VerifyReport {
  const planner = plannerFor(h, orders);
  const g = planner.newBatch();
  const report: VerifyReport = { checked: 0, mismatches: [] };
  for (const a of h.aggregated) {
    if (!a.digest) continue;
    planner.plan(a.step, g);
    const replayed = digestHex(g);
    report.checked++;
    if (replayed !== a.digest) report.mismatches.push({ step: a.step, recorded: a.digest, replayed });
  }
  return report;
}
