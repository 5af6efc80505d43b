/**
 * bench:cluster — aggregate serving throughput of one run with 2 replicas vs 1, measured
 * in the same run on the same etcd.
 *
 * Two `mixflow serve --cluster` processes on a local 1-member etcd. Each round creates a
 * fresh run (same config, new id) and streams it to 8 ranks (StreamBatches, raw messages,
 * no decoding): "one" sends all 8 streams to replica r0, "two" splits them 4 + 4 over r0 and
 * r1. Rounds alternate the order. Printed per phase: batches/s, MB/s, and the CPU seconds
 * each replica used (from /proc), so the scaling per core is visible: on a 2-core machine
 * that also runs the consumers and etcd, the ratio is bounded by the cores, not by mixflow.
 *
 * Last line: one JSON object (ratio = best "two" over best "one", median_round_ratio).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MixflowClient } from "../../src/client/index.js";
import { EtcdCluster, freePorts } from "../../test/cluster/etcd-harness.js";
import { bundleClusterCli, spawnReplica, type ProcessReplica } from "../../test/cluster/replicas.js";
import { tmpDir } from "../../test/helpers/fixtures.js";

const STREAMS = 8;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BATCH_SIZE = 64;

/** utime + stime of a process in seconds (Linux /proc, 100 ticks/s). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function writeData(dir: string): Record<string, unknown>[] {
  return ["web", "code", "books", "news"].map((name, d) => {
    const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ text: `${name} ${i} ` + "abcdefghij".repeat(90 + ((i * 7 + d) % 20)) }));
    fs.writeFileSync(path.join(dir, `${name}.jsonl`), lines.join("\n") + "\n");
    return { name, train: { format: "jsonl", paths: [path.join(dir, `${name}.jsonl`)] } };
  });
}

async function stream(address: string, runId: string, rank: number): Promise<number> {
  const c = new MixflowClient(address, { deadlineMs: 60_000 });
  let bytes = 0;
  const s = c.streamBatchesRaw({ runId, fromStep: 0, rank, worldSize: STREAMS, prefetch: 8, maxBatches: BATCHES });
  for await (const m of s) {
    const t = (m as { text?: { data?: Buffer } }).text;
    bytes += t?.data?.length ?? 0;
  }
  c.close();
  return bytes;
}

interface Phase {
  batchesPerSec: number;
  MBps: number;
  cpu: Record<string, number>;
  seconds: number;
}

async function phase(name: "one" | "two", replicas: ProcessReplica[], admin: MixflowClient, domains: Record<string, unknown>[], round: number): Promise<Phase> {
  const runId = `bench-${name}-${round}`;
  await admin.createRun({ id: runId, seed: 3, batchSize: BATCH_SIZE, worldSize: STREAMS, maxSteps: 0, strategy: { name: "static" }, domains });
  // Both replicas must know the run before timing starts.
  for (const r of replicas) {
    const c = new MixflowClient(r.address, { deadlineMs: 10_000 });
    for (let i = 0; i < 400 && !(await c.listRuns()).some((x) => x.runId === runId); i++) await new Promise((res) => setTimeout(res, 25));
    c.close();
  }
  const cpu0 = replicas.map((r) => cpuSeconds(r.child.pid!));
  const t0 = performance.now();
  const bytes = await Promise.all(
    Array.from({ length: STREAMS }, (_, rank) => stream((name === "one" ? replicas[0]! : replicas[rank % 2]!).address, runId, rank)),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu: Record<string, number> = {};
  replicas.forEach((r, i) => (cpu[r.nodeId] = Number((cpuSeconds(r.child.pid!) - cpu0[i]!).toFixed(2))));
  const total = bytes.reduce((a, b) => a + b, 0);
  return { batchesPerSec: (STREAMS * BATCHES) / seconds, MBps: total / seconds / 1e6, cpu, seconds };
}

async function main(): Promise<void> {
  const etcd = await EtcdCluster.start(1);
  const cli = await bundleClusterCli();
  const dir = tmpDir("mixflow-bench-cluster-");
  const replicas: ProcessReplica[] = [];
  try {
    const ports = await freePorts(2);
    for (const [i, id] of ["r0", "r1"].entries()) replicas.push(await spawnReplica(cli, dir, etcd.url, id, 60_000, ports[i]!, 64));
    const admin = new MixflowClient(replicas[0]!.address, { deadlineMs: 30_000 });
    const domains = writeData(dir);
    const ones: Phase[] = [];
    const twos: Phase[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order: ("one" | "two")[] = round % 2 === 0 ? ["one", "two"] : ["two", "one"];
      for (const name of order) {
        const p = await phase(name, replicas, admin, domains, round);
        (name === "one" ? ones : twos).push(p);
        process.stdout.write(
          `round ${round} ${name === "one" ? "1 replica " : "2 replicas"}: ${p.batchesPerSec.toFixed(0)} rank-batches/s, ${p.MBps.toFixed(1)} MB/s, ${p.seconds.toFixed(2)} s; replica CPU s: ${JSON.stringify(p.cpu)}\n`,
        );
      }
    }
    admin.close();
    const best = (xs: Phase[]): Phase => xs.reduce((a, b) => (b.batchesPerSec > a.batchesPerSec ? b : a));
    const ratios = ones.map((o, i) => twos[i]!.batchesPerSec / o.batchesPerSec).sort((a, b) => a - b);
    const b1 = best(ones);
    const b2 = best(twos);
    process.stdout.write(
      JSON.stringify({
        streams: STREAMS,
        batches_per_stream: BATCHES,
        one_replica_batches_per_s: Number(b1.batchesPerSec.toFixed(0)),
        two_replicas_batches_per_s: Number(b2.batchesPerSec.toFixed(0)),
        ratio: Number((b2.batchesPerSec / b1.batchesPerSec).toFixed(2)),
        median_round_ratio: Number(ratios[Math.floor(ratios.length / 2)]!.toFixed(2)),
        one_replica_cpu_s: b1.cpu,
        two_replicas_cpu_s: b2.cpu,
        cores: (await import("node:os")).cpus().length,
      }) + "\n",
    );
  } finally {
    for (const r of replicas) await r.kill();
    await etcd.stop();
    fs.rmSync(cli, { force: true });
  }
}

await main();
