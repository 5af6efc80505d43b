/**
 * npm run cluster:demo — a local 3-member etcd and 2 mixflow replicas serving one run.
 *
 * Two ranks fetch and report through clients that know both replicas; the weights adapt
 * under the default strategy (mixflow: the leader's eval requests reach rank 0 through
 * either replica, and the probe losses it reports reach the leader, which commits new
 * weights from them). Half way, the leader replica is killed with SIGKILL: the
 * ranks fail over, the other replica takes the lead within a few seconds, and every batch
 * re-fetched from it is the one served before. Everything runs in a temp directory and
 * is stopped at the end. Needs etcd on PATH (Debian: apt-get install etcd-server).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { MixflowClient } from "../../src/client/index.js";
import type { Batch } from "../../src/client/types.js";
import { connectEtcd, parseClusterAddress } from "../../src/cluster/etcd-client.js";
import { EtcdVersionLog } from "../../src/cluster/etcd-version-log.js";
import { currentLeader } from "../../src/cluster/leadership.js";
import { EtcdCluster, freePorts } from "../../test/cluster/etcd-harness.js";
import { bundleClusterCli, spawnReplica, type ProcessReplica } from "../../test/cluster/replicas.js";
import { tmpDir } from "../../test/helpers/fixtures.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const data = path.resolve(here, "../demo/data");
const STEPS = Number(process.env.DEMO_STEPS ?? 300);
const say = (s: string): void => void process.stdout.write(`[cluster:demo] ${s}\n`);

const domains = ["prose", "code", "arithmetic", "logs", "noise"].map((name) => ({
  name,
  train: { format: "jsonl", paths: [path.join(data, `${name}.train.jsonl`)] },
  eval: { format: "jsonl", paths: [path.join(data, `${name}.eval.jsonl`)] },
}));

const key = (b: Batch): string => `${b.version}:${b.digest}`;

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(data, "prose.train.jsonl"))) throw new Error(`demo data missing in ${data}: run \`npm run demo\` once (it writes it)`);
  const dir = tmpDir("mixflow-cluster-demo-");
  say("starting a 3-member etcd on loopback");
  const etcd = await EtcdCluster.start(3);
  const cli = await bundleClusterCli();
  const replicas = new Map<string, ProcessReplica>();
  const ports = await freePorts(2);
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const start = async (id: string, i: number): Promise<void> => {
    replicas.set(id, await spawnReplica(cli, dir, etcd.url, id, 60_000, ports[i]!, 16));
  };
  try {
    await Promise.all([start("r0", 0), start("r1", 1)]);
    say(`replicas r0 ${addresses[0]} and r1 ${addresses[1]} on ${etcd.url}`);
    const ranks = [new MixflowClient(addresses, { deadlineMs: 5000 }), new MixflowClient([...addresses].reverse(), { deadlineMs: 5000 })];
    await ranks[0]!.createRun({ id: "demo", seed: 7, batchSize: 32, worldSize: 2, maxSteps: STEPS, aggregationTimeoutMs: 2000, strategy: { name: "mixflow", params: { evalEvery: 10 } }, domains });
    // The other replica learns of the run from its etcd watch (milliseconds later).
    for (const c of ranks) while (!(await c.listRuns()).some((r) => r.runId === "demo")) await new Promise((r) => setTimeout(r, 20));
    const log = new EtcdVersionLog(connectEtcd(parseClusterAddress(etcd.url)), "mixflow/", "demo");
    const served = new Map<string, string>();
    let killedAt = 0;
    const evalSteps = new Set<number>();
    for (let step = 0; step < STEPS; step++) {
      if (step === Math.floor(STEPS / 2)) {
        const leader = (await currentLeader(log))!;
        say(`step ${step}: killing the leader ${leader.nodeId} with SIGKILL`);
        await replicas.get(leader.nodeId)!.kill();
        killedAt = Date.now();
      }
      await Promise.all(
        ranks.map(async (c, rank) => {
          for (;;) {
            try {
              const b = await c.nextBatch("demo", step, rank, 2);
              served.set(`${step}:${rank}`, key(b));
              // A made-up loss: code and arithmetic learn fastest, noise never.
              const loss = (d: number): number => [2.0, 1.2, 1.0, 1.6, 4.0][d]! * (1 - [0.3, 0.6, 0.6, 0.3, 0][d]! * (step / STEPS));
              const losses = Array.from(b.slotDomains, loss);
              // Rank 0 answers the eval requests (probe documents of each domain).
              const evalLosses = b.evalRequested ? Object.fromEntries(b.probes.map((p) => [domains[p.domain]!.name, loss(p.domain)])) : undefined;
              if (b.evalRequested) evalSteps.add(step);
              await c.reportSignals({ runId: "demo", step, rank, worldSize: 2, sampleLosses: losses, ...(evalLosses ? { evalLosses } : {}) });
              return;
            } catch (e) {
              // Both addresses refused for a moment: retry.
              if (Date.now() - killedAt > 30_000) throw e;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }),
      );
      if (step % 50 === 49) {
        const w = await ranks[0]!.getWeights("demo");
        const v = w.versions[w.versions.length - 1]!;
        const leader = await currentLeader(log).catch(() => null);
        say(`step ${step}: ${w.versions.length} versions, leader ${leader?.nodeId ?? "?"}, weights ${w.domains.map((d, i) => `${d}=${v.weights[i]!.toFixed(2)}`).join(" ")}`);
      }
    }
    const survivor = new MixflowClient(addresses, { deadlineMs: 5000 });
    let same = 0;
    for (const [k, v] of served) {
      const [step, rank] = k.split(":").map(Number) as [number, number];
      if (key(await survivor.nextBatch("demo", step, rank, 2)) === v) same++;
    }
    say(`re-fetched all ${served.size} (step, rank) batches from the surviving replica: ${same} identical`);
    const { entries } = await log.scan();
    const evalOnly = entries.filter((e) => (e.body as { kind?: string }).kind === "eval").length;
    say(`etcd log: ${entries.length} entries, contiguous 1..${entries.length} (${entries.length - evalOnly} weights versions, ${evalOnly} eval requests alone); rank 0 answered eval requests at ${evalSteps.size} steps`);
    survivor.close();
    for (const c of ranks) c.close();
    log.client.close();
  } finally {
    for (const r of replicas.values()) await r.kill();
    await etcd.stop();
    fs.rmSync(cli, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
