/**
 * `mixflow replay export`: the per-step composition of a recorded run (step, rank, slot,
 * domain, sample) as JSONL or CSV, and its weights timeline as CSV — computed from the
 * journal alone, by re-planning every step from the recorded versions (the batches are a
 * pure function of them, so this is exactly what the trainers received).
 */
import * as fs from "node:fs";
import { progress } from "../util/progress.js";
import { lastStep, plannerFor, type RunHistory } from "./history.js";
import { invalid } from "../errors.js";

export interface ExportOptions {
  format: "jsonl" | "csv";
  /** Steps [from, to] (default: 0 .. last reported step). */
  from?: number;
  to?: number;
  /** World size for the rank column (default: the run's). */
  worldSize?: number;
  /** The run's difficulty orders (./difficulty.ts) when it is a curriculum run. */
  difficultyOrders?: (Uint32Array | null)[];
}

/** Write the composition to `out` (a path); returns the number of rows. */
export async function exportComposition(h: RunHistory, out: string, o: ExportOptions): Promise<number> {
  const planner = plannerFor(h, o.difficultyOrders);
  const from = o.from ?? 0;
  const to = o.to ?? lastStep(h);
  const ws = o.worldSize ?? h.config.worldSize;
  const b = h.config.batchSize;
  if (b % ws !== 0) throw invalid(`world size ${ws} does not divide the batch size ${b}`);
  const perRank = b / ws;
  const names = h.config.domains.map((d) => d.name);
  const stream = fs.createWriteStream(out);
  const write = (s: string): Promise<void> =>
    stream.write(s) ? Promise.resolve() : new Promise<void>((r) => stream.once("drain", () => r()));
  if (o.format === "csv") await write("step,rank,slot,domain,sample\n");
  const g = planner.newBatch();
  const prog = progress(`exporting ${h.runId}`);
  let rows = 0;
  for (let step = from; step <= to; step++) {
    planner.plan(step, g);
    const lines: string[] = [];
    for (let j = 0; j < b; j++) {
      const rank = Math.floor(j / perRank);
      const d = names[g.domains[j]!]!;
      const sample = g.samples[j]!;
      lines.push(
        o.format === "csv"
          ? `${step},${rank},${j},${d},${sample}`
          : JSON.stringify({ step, rank, slot: j, domain: d, sample }),
      );
    }
    rows += lines.length;
    await write(lines.join("\n") + "\n");
    prog.update(step - from + 1, to - from + 1);
  }
  prog.done();
  await new Promise<void>((resolve, reject) => stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return rows;
}

/** The weights timeline as CSV text: step, version, reason, then one column per domain. */
export function weightsTimelineCsv(h: RunHistory): string {
  const names = h.config.domains.map((d) => d.name);
  const rows = [["from_step", "version", "committed_at_step", "reason", ...names].join(",")];
  for (const v of h.versions) {
    rows.push([v.fromStep, v.version, v.committedAtStep, JSON.stringify(v.reason), ...v.weights.map((w) => w.toPrecision(17))].join(","));
  }
  return rows.join("\n") + "\n";
}
