/**
 * A TypeScript trainer against a running mixflow server — the counterpart of
 * examples/python/train_lm.py for TypeScript users. It trains the demo's online byte n-gram
 * model on its rank's slice, reports per-sample losses and answers eval requests.
 *
 *   npx tsx examples/typescript/train.ts --server 127.0.0.1:50051 --run demo [--rank 0 --world-size 2]
 *
 * Run it once per rank with the same --world-size to train data-parallel: each rank gets a
 * disjoint slice of every step and the server aggregates their reports.
 */
import { parseArgs } from "node:util";
import { train } from "../demo/trainer.js";

const { values } = parseArgs({
  options: {
    server: { type: "string", default: "127.0.0.1:50051" },
    run: { type: "string" },
    rank: { type: "string", default: "0" },
    "world-size": { type: "string", default: "0" },
  },
});
if (!values.run) {
  console.error("usage: train.ts --server HOST:PORT --run RUN_ID [--rank R --world-size W]");
  process.exit(2);
}

const started = Date.now();
const result = await train({
  address: values.server!,
  runId: values.run,
  rank: Number(values.rank),
  worldSize: Number(values["world-size"]),
  onStep: (b, loss) => {
    if (b.step % 50 === 0) console.log(`step ${b.step}  version ${b.version}  loss ${loss.toFixed(3)} bits/byte`);
  },
});
console.log(JSON.stringify({ steps: result.steps, seconds: (Date.now() - started) / 1000, served: Object.fromEntries(result.served) }));
