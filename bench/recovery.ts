/**
 * bench:recovery — how long a restarted server takes to rebuild a long run from its journal.
 *
 *   npx tsx bench/recovery.ts          (npm run bench:recovery; BENCH_RECOVERY_STEPS=1000000)
 *
 * 1. A child process drives one run of the default `mixflow` strategy (8 domains, batch 16,
 *    2 ranks) for STEPS steps through the real registry (batch assembly, reports, strategy
 *    updates, versions, journal with `durability: none` so that generating is fast; the
 *    recovery path is the same) and is then killed with SIGKILL: no shutdown checkpoint.
 * 2. This process times the server's recovery, `RunRegistry.open` on that data directory
 *    (read and check every record after the last checkpoint, replay them through the run and
 *    its strategy), against a baseline in the same run: `Journal.open` alone on the same
 *    directory (reading and checking the same records, no replay). Each is measured three
 *    times alternately after a warm-up read, so both see a warm page cache; best of three.
 *
 * Last line: one JSON object with recovery_s, baseline_s, ratio, records, steps.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { serverConfig } from "../src/config/schema.js";
import { Journal } from "../src/journal/index.js";
import { RunRegistry } from "../src/runs/registry.js";
import { createLogger } from "../src/util/log.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const STEPS = Number(process.env.BENCH_RECOVERY_STEPS ?? 1_000_000);
const DOMAINS = ["a", "b", "c", "d", "e", "f", "g", "h"];

function configFor(dir: string) {
  for (const [i, name] of DOMAINS.entries()) {
    const lines = Array.from({ length: 200 }, (_, j) => JSON.stringify({ text: `${name} document ${j} ${"x".repeat((j * 7 + i) % 50)}` }));
    fs.writeFileSync(path.join(dir, `${name}.jsonl`), lines.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, `${name}.eval.jsonl`), lines.slice(0, 20).join("\n") + "\n");
  }
  return serverConfig.parse({
    dataDir: path.join(dir, "state"),
    listen: "127.0.0.1:0",
    metrics: { enabled: false },
    journal: { durability: "none" },
    runs: [
      {
        id: "long",
        batchSize: 16,
        worldSize: 2,
        strategy: { name: "mixflow" },
        domains: DOMAINS.map((name) => ({
          name,
          train: { format: "jsonl", paths: [`${name}.jsonl`] },
          eval: { format: "jsonl", paths: [`${name}.eval.jsonl`] },
        })),
      },
    ],
  });
}

/** Child: drive the run, print progress, then say "done" and wait to be killed. */
async function generate(dir: string): Promise<void> {
  const reg = await RunRegistry.open({ config: configFor(dir), baseDir: dir, logger: createLogger("silent") });
  const run = reg.get("long");
  const t0 = performance.now();
  for (let step = 0; step < STEPS; step++) {
    await Promise.all(
      [0, 1].map(async (rank) => {
        const b = await run.batch(step, rank, 2);
        const counts = new Map<number, number>();
        for (const d of b.slice.domains) counts.set(d, (counts.get(d) ?? 0) + 1);
        const evalLosses: Record<string, number> = {};
        if (b.eval !== null) for (const [i, name] of DOMAINS.entries()) evalLosses[name] = 3 - i * 0.1 - step * 1e-6;
        await run.report(step, rank, 2, {
          domain_losses: [...counts].map(([domain, count]) => ({ domain, loss_sum: count * (2 + domain * 0.1), count })),
          eval_losses: evalLosses,
        });
      }),
    );
    if (step % 50_000 === 0) process.stderr.write(`generated ${step} steps (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  await run.idle();
  process.stdout.write("done\n");
  await new Promise(() => undefined); // killed by the parent
}

async function timeIt<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [(performance.now() - t0) / 1000, v];
}

async function main(): Promise<void> {
  if (process.argv[2] === "--generate") return generate(process.argv[3]!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-recovery-"));
  try {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "recovery.ts"), "--generate", dir], { stdio: ["ignore", "pipe", "inherit"] });
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => d.toString().includes("done") && resolve());
      child.on("exit", (code) => reject(new Error(`generator exited with ${code}`)));
    });
    const genS = (performance.now() - t0) / 1000;
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    const config = configFor(dir);
    const journalDir = path.join(config.dataDir, "journal");
    const bytes = fs.readdirSync(journalDir).reduce((a, f) => a + fs.statSync(path.join(journalDir, f)).size, 0);
    const readOnly = async () => {
      const { journal, records } = await Journal.open({ dir: journalDir, durability: "none" });
      await journal.close();
      return records.length;
    };
    const recover = async () => {
      const reg = await RunRegistry.open({ config, baseDir: dir, logger: createLogger("silent") });
      const info = { lastAggregated: reg.get("long").lastAggregated, versions: reg.get("long").publishedVersions.length };
      await reg.shutdown(); // closes the journal; writes no checkpoint, so every round recovers the same records

      return info;
    };
    await readOnly(); // warm the page cache
    const base: number[] = [];
    const full: number[] = [];
    let records = 0;
    let info = { lastAggregated: -1, versions: 0 };
    for (let i = 0; i < 3; i++) {
      const [b, n] = await timeIt(readOnly);
      base.push(b);
      records = n;
      const [f, inf] = await timeIt(recover);
      full.push(f);
      info = inf;
    }
    if (info.lastAggregated !== STEPS - 1) throw new Error(`recovered lastAggregated ${info.lastAggregated}, expected ${STEPS - 1}`);
    const recoveryS = Math.min(...full);
    const baselineS = Math.min(...base);
    console.log(`generated ${STEPS} steps in ${genS.toFixed(0)} s; journal ${(bytes / 1e6).toFixed(1)} MB`);
    console.log(`recovery (RunRegistry.open): ${full.map((x) => x.toFixed(3)).join(", ")} s; baseline (Journal.open): ${base.map((x) => x.toFixed(3)).join(", ")} s`);
    console.log(
      JSON.stringify({
        recovery_s: Number(recoveryS.toFixed(3)),
        baseline_s: Number(baselineS.toFixed(3)),
        ratio: Number((recoveryS / baselineS).toFixed(2)),
        records_after_checkpoint: records,
        steps: STEPS,
        versions: info.versions,
        journal_mb: Number((bytes / 1e6).toFixed(1)),
      }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
