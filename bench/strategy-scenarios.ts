/**
 * Strategy × scenario table on the simulated learner (test/sim/learner.ts): for every
 * strategy registered in `strategies/index.ts` that can run on its own (its params parse
 * from {} — strategies that need proxy-run results or a schedule are skipped), the final
 * objective loss and how many steps it needs to reach uniform's final loss, as a ratio of
 * uniform's steps (< 1 = faster; "never" = did not get there), averaged over seeds.
 *
 * Usage: npx tsx bench/strategy-scenarios.ts [--write docs/strategies.md]
 * With --write, the table between the `scenario-table` markers in that file is replaced.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { STRATEGIES } from "../strategies/index.js";
import { staticStrategy } from "../strategies/static.js";
import type { AnyStrategy } from "../strategies/types.js";
import { SCENARIO_NAMES, scenario, simulate, stepsRatio } from "../test/sim/learner.js";

const STEPS = 3000;
const BATCH = 32;
const SEEDS = [1, 2, 3];

/**
 * Parameters used here instead of the defaults, where a default is sized for real runs
 * far longer than the simulated 3000 steps. Listed in the table's notes.
 */
const BENCH_PARAMS: Readonly<Record<string, unknown>> = {
  exp3: { warmupSteps: 100 },
};

function runnable(s: AnyStrategy): boolean {
  try {
    s.params.parse(BENCH_PARAMS[s.name] ?? {});
    return true;
  } catch {
    return false;
  }
}

function fmt(x: number): string {
  return x.toFixed(4);
}

export function buildTable(): string {
  const strategies = [...STRATEGIES.values()].filter(runnable);
  const skipped = [...STRATEGIES.values()].filter((s) => !runnable(s)).map((s) => s.name);
  const header = `| strategy | ${SCENARIO_NAMES.join(" | ")} |`;
  const sep = `| --- | ${SCENARIO_NAMES.map(() => "---").join(" | ")} |`;
  const uniform = new Map(SCENARIO_NAMES.map((n) => [n, SEEDS.map((seed) => simulate(staticStrategy, {}, scenario(n), { steps: STEPS, batchSize: BATCH, seed }))]));
  const rows = strategies.map((s) => {
    const cells = SCENARIO_NAMES.map((n) => {
      const res = SEEDS.map((seed) => simulate(s, BENCH_PARAMS[s.name] ?? {}, scenario(n), { steps: STEPS, batchSize: BATCH, seed }));
      const fin = res.reduce((a, r) => a + r.finalObjective, 0) / res.length;
      const ratios = res.map((r, i) => stepsRatio(r, uniform.get(n)![i]!));
      const ok = ratios.filter((x): x is number => x !== null);
      const ratio = ok.length === ratios.length ? (ok.reduce((a, b) => a + b, 0) / ok.length).toFixed(2) : ok.length === 0 ? "never" : `${(ok.reduce((a, b) => a + b, 0) / ok.length).toFixed(2)} (${ratios.length - ok.length}/${ratios.length} never)`;
      return `${fmt(fin)} / ${ratio}`;
    });
    return `| ${s.name} | ${cells.join(" | ")} |`;
  });
  const notes = [
    "",
    `Cells: final objective loss (mean of seeds ${SEEDS.join(", ")}) / steps to reach uniform's final loss ÷ uniform's steps (same seed). ${STEPS} steps, batch ${BATCH}, one update per step.`,
    `Bench overrides of defaults: ${Object.entries(BENCH_PARAMS).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join("; ") || "none"}.`,
    `Skipped (need proxy runs or a schedule to run): ${skipped.join(", ") || "none"}.`,
  ];
  return [header, sep, ...rows, ...notes].join("\n");
}

const table = buildTable();
const i = process.argv.indexOf("--write");
if (i >= 0) {
  const path = process.argv[i + 1] ?? "docs/strategies.md";
  const doc = readFileSync(path, "utf8");
  const start = "<!-- scenario-table:start -->";
  const end = "<!-- scenario-table:end -->";
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${path} has no ${start} … ${end} markers`);
  writeFileSync(path, `${doc.slice(0, a + start.length)}\n${table}\n${doc.slice(b)}`);
}
process.stdout.write(`${table}\n`);
