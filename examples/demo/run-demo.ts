/**
 * `npm run demo`: start a mixflow server on the built-in demo data (examples/demo/), run
 * the demo trainer against it, show the run progressing — the weights moving away from
 * the unlearnable "noise" domain — and end with a summary of what was served.
 *
 * State goes to a fresh temporary directory, so the demo is the same every time.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { loadServerConfig } from "../../src/config/load.js";
import { MixflowServer } from "../../src/server/server.js";
import { createLogger } from "../../src/util/log.js";
import { MixflowClient } from "../../src/client/index.js";
import { train } from "./trainer.js";

const here = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-demo-"));
  const { config, baseDir } = loadServerConfig(path.join(here, "mixflow.json"), {
    dataDir,
    listen: "127.0.0.1:0",
    metrics: { enabled: false },
  });
  // "error", not "warn": the demo's generated code and log domains are templates whose eval
  // documents near-duplicate train documents by construction, which the server would
  // otherwise flag at start (see docs/strategies.md, probes).
  const server = await MixflowServer.start({ config, baseDir, logger: createLogger("error") });
  const run = config.runs[0]!;
  const names = run.domains.map((d) => d.name);
  console.log(`mixflow demo: server on ${server.address}, run "${run.id}" with strategy "${run.strategy.name}"`);
  console.log(`domains: ${names.join(", ")}  (batch ${run.batchSize}, ${run.maxSteps} steps)\n`);
  const header = ["step", "ver", ...names.map((n) => n.slice(0, 10).padStart(10)), "  loss"].join("  ");
  console.log(header);
  const client = new MixflowClient(server.address);
  try {
    const result = await train({
      address: server.address,
      runId: run.id,
      onStep: (b, loss) => {
        if (b.step % 25 !== 0) return;
        const w = server.registry.get(run.id).planner.versionAt(b.step).weights;
        console.log(
          [String(b.step).padStart(4), String(b.version).padStart(3), ...w.map((x) => x.toFixed(3).padStart(10)), loss.toFixed(3).padStart(6)].join("  "),
        );
      },
    });
    await server.registry.get(run.id).idle();
    const weights = await client.getWeights(run.id);
    const final = weights.versions[weights.versions.length - 1]!;
    console.log(`\nserved ${result.steps} steps; ${weights.versions.length} weight versions committed`);
    console.log("domain        samples   share   final weight");
    const total = [...result.served.values()].reduce((a, b) => a + b, 0);
    names.forEach((n, i) => {
      const s = result.served.get(n)!;
      console.log(`${n.padEnd(12)} ${String(s).padStart(8)}  ${((100 * s) / total).toFixed(1).padStart(5)}%   ${final.weights[i]!.toFixed(3)}`);
    });
    console.log(`\nstate (journal, indexes) in ${dataDir}`);
  } finally {
    client.close();
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
