/**
 * bench:regmix — RegMix's regression step on the paper's own proxy results.
 *
 *   npm run bench:regmix [-- --data DIR]     (DIR default: ../shared/testbeds/regmix/data
 *                                              next to the repository; env REGMIX_DATA too)
 *
 * The testbed (sail-sg/regmix, MIT) holds 512 runs of 1M-parameter proxy models to train on
 * and 256 held out: their mixtures and Pile-CC validation losses. Read in place, never copied.
 * Both of mixflow's regressors (strategies/fit: gbdt, linear) are fitted on the 512 and
 * ranked on the 256; the paper reports Spearman ≈ 0.99 for LightGBM and ≈ 0.90 for linear.
 * The linear fit is the baseline measured in the same run.
 *
 * This was a test that skipped when the testbed was absent; the suite needs nothing outside
 * the repository, so it is a benchmark. Exit status 1 when a value falls outside the paper's
 * neighbourhood (gbdt > 0.98, 0.85 < linear < 0.95), 2 when the data is missing.
 * Last line: one JSON object.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fitMixtureModel } from "../strategies/fit/regmix.js";
import { predictGbdt } from "../strategies/fit/gbdt.js";
import { predictLinear } from "../strategies/fit/linear.js";
import { spearman } from "../strategies/fit/stats.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const flag = process.argv.indexOf("--data");
const data = resolve(flag >= 0 ? process.argv[flag + 1]! : (process.env.REGMIX_DATA ?? resolve(repoRoot, "../shared/testbeds/regmix/data")));
if (!existsSync(resolve(data, "train_mixture_1m.csv"))) {
  console.error(`bench:regmix: no RegMix testbed at ${data} (want train_mixture_1m.csv etc.): pass --data DIR or set REGMIX_DATA`);
  process.exit(2);
}

function readCsv(file: string): { header: string[]; rows: number[][] } {
  const [h, ...rows] = readFileSync(resolve(data, file), "utf8").trim().split(/\r?\n/);
  return { header: h!.split(","), rows: rows.map((r) => r.split(",").map(Number)) };
}

function load(mix: string, loss: string): { x: number[][]; y: number[] } {
  const m = readCsv(mix);
  const l = readCsv(loss);
  const col = l.header.indexOf("metric/the_pile_pile_cc_val_loss");
  if (col <= 0) throw new Error(`${loss}: no metric/the_pile_pile_cc_val_loss column`);
  m.rows.forEach((r, i) => {
    if (r[0] !== l.rows[i]?.[0]) throw new Error(`${mix} line ${i + 2}: run index ${r[0]} differs from ${loss}'s ${l.rows[i]?.[0]}`);
  });
  return { x: m.rows.map((r) => r.slice(1)), y: l.rows.map((r) => r[col]!) };
}

const train = load("train_mixture_1m.csv", "train_pile_loss_1m.csv");
const test = load("test_mixture_1m.csv", "test_pile_loss_1m.csv");
const t0 = performance.now();
const gb = fitMixtureModel("gbdt", train.x, train.y);
const t1 = performance.now();
const lin = fitMixtureModel("linear", train.x, train.y);
const t2 = performance.now();
const sGb = spearman(test.x.map((r) => predictGbdt(gb as never, r)), test.y);
const sLin = spearman(test.x.map((r) => predictLinear(lin as never, r)), test.y);
console.log(`train ${train.x.length} proxy runs, held out ${test.x.length}`);
console.log(`held-out Spearman: gbdt ${sGb.toFixed(4)} (paper LightGBM ≈ 0.99), linear ${sLin.toFixed(4)} (paper ≈ 0.90); gbdt/linear ${(sGb / sLin).toFixed(3)}x`);
const ok = sGb > 0.98 && sLin > 0.85 && sLin < 0.95;
console.log(JSON.stringify({ gbdt_spearman: sGb, linear_spearman: sLin, ratio: sGb / sLin, gbdt_fit_ms: t1 - t0, linear_fit_ms: t2 - t1, ok }));
process.exit(ok ? 0 : 1);
