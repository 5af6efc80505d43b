/**
 * `mixflow replay verify`: recompute every aggregated step's batch digest from the
 * recorded versions and compare it with the digest the server recorded when it served
 * that step. A mismatch means replay would not reproduce the run (changed sampling code,
 * changed difficulty scores): it names the first step that differs.
 *
 * The batch digest covers (domain, sample index) only; `verify --data` also re-reads the
 * data, re-assembles every slice the server hashed and compares the per-domain content
 * digests (src/sources/content-digest.ts), naming the step and the domain whose bytes
 * are not the ones served.
 */
import { digestHex } from "../runs/run.js";
import { assembleSlice } from "../runs/assemble.js";
import { sliceDigest, type Source } from "../sources/index.js";
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

export interface ContentReport {
  /** Steps with content digests (0: the journal recorded none, e.g. written by an older mixflow). */
  checked: number;
  /** Steps whose payload bytes differ from the data now, with the domains that differ. */
  mismatches: { step: number; domains: string[] }[];
}

/**
 * Re-assemble every hashed slice from `train` (the run's train sources, opened from the
 * data as it is now, in domain order) and compare the per-domain content digests.
 */
export function verifyContent(h: RunHistory, train: readonly Source[], orders?: (Uint32Array | null)[]): ContentReport {
  const planner = plannerFor(h, orders);
  const g = planner.newBatch();
  const names = h.config.domains.map((d) => d.name);
  const report: ContentReport = { checked: 0, mismatches: [] };
  for (const a of h.aggregated) {
    if (!a.content) continue;
    planner.plan(a.step, g);
    const sums = new Uint32Array(names.length);
    const r = a.content.ranges;
    for (let i = 0; i < r.length; i += 2) {
      const s = assembleSlice(g, r[i]!, r[i + 1]!, train);
      const part = sliceDigest(g, r[i]!, r[i + 1]!, s.payload, names.length);
      for (let d = 0; d < sums.length; d++) sums[d] = (sums[d]! + part[d]!) >>> 0;
    }
    report.checked++;
    const differ = names.filter((_, d) => sums[d] !== a.content!.domains[d]);
    if (differ.length > 0) report.mismatches.push({ step: a.step, domains: differ });
  }
  return report;
}
