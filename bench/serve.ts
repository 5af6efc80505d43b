/**
 * bench:serve — how much mixflow adds over the gRPC transport.
 *
 * 1. Streaming throughput: a consumer reads 1 MiB token batches (512 windows of 1,024
 *    uint16 tokens) from StreamBatches; baseline: a bare grpc-js server streaming
 *    pre-built 1 MiB buffers, measured in the same run. Both servers run as their own
 *    processes, the consumer in this one. Rounds alternate the order of the two; `ratio`
 *    is best mixflow over best baseline, `median_round_ratio` the median of per-round
 *    ratios (report both: the machine is shared and noisy).
 * 2. Unary latency: 16 concurrent ranks calling NextBatch for 64 KiB slices (p50_ms,
 *    p99_ms), and one rank alone (single_rank_*: the per-call cost without queueing);
 *    baseline: the same 16 callers fetching pre-built 64 KiB buffers from the bare server
 *    (baseline_p50_ms, baseline_p99_ms, measured before and after mixflow; p99_ratio).
 *
 * Last line: one JSON object with mixflow_MBps, baseline_MBps, ratio, p50_ms, p99_ms.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { MixflowClient } from "../src/client/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const MiB = 1 << 20;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

function startChild(args: string[]): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve({ child, line: JSON.parse(buf.slice(0, nl)) as Record<string, unknown> });
    });
    child.on("exit", (c) => reject(new Error(`child exited with ${c}`)));
  });
}

function writeTokens(dir: string, name: string, tokens: number): string {
  const p = path.join(dir, `${name}.bin`);
  const a = new Uint16Array(tokens);
  for (let i = 0; i < tokens; i++) a[i] = (i * 2654435761) >>> 20;
  fs.writeFileSync(p, Buffer.from(a.buffer));
  return p;
}

async function streamMixflow(addr: string, runId: string): Promise<number> {
  const c = new MixflowClient(addr);
  const call = c.streamBatchesRaw({ runId, fromStep: Math.floor(Math.random() * 1e6), maxBatches: BATCHES, prefetch: 4 });
  let bytes = 0;
  const t0 = performance.now();
  for await (const m of call) bytes += ((m as { tokens: { data: Buffer } }).tokens.data.length);
  const s = (performance.now() - t0) / 1000;
  c.close();
  return bytes / MiB / s;
}

async function streamBaseline(port: number): Promise<number> {
  const def = protoLoader.loadSync(path.join(here, "support/baseline.proto"), { keepCase: true, longs: Number });
  const Ctor = (grpc.loadPackageDefinition(def).bench as grpc.GrpcObject).Baseline as grpc.ServiceClientConstructor;
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 256 << 20 });
  const call = (client.Stream as (r: unknown) => grpc.ClientReadableStream<{ data: Buffer }>).call(client, { bytes: MiB, count: BATCHES });
  let bytes = 0;
  const t0 = performance.now();
  for await (const m of call) bytes += (m as { data: Buffer }).data.length;
  const s = (performance.now() - t0) / 1000;
  client.close();
  return bytes / MiB / s;
}

/**
 * Latency of `ranks` concurrent callers, each making BENCH_UNARY_STEPS sequential calls on
 * its own channel. `open(r)` returns rank r's call (taking the call index) and its closer.
 */
async function unaryLatency(ranks: number, open: (rank: number) => { call: (i: number) => Promise<unknown>; close: () => void }): Promise<number[]> {
  const steps = Number(process.env.BENCH_UNARY_STEPS ?? 150);
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: ranks }, async (_, r) => {
      const c = open(r);
      for (let s = 0; s < steps; s++) {
        const t0 = performance.now();
        await c.call(s);
        if (s >= 5) lat.push(performance.now() - t0); // the first calls warm up the channel
      }
      c.close();
    }),
  );
  return lat.sort((a, b) => a - b);
}

/** NextBatch for rank r of a 16-rank run, from `firstStep` on. */
function mixflowUnary(addr: string, runId: string, firstStep: number) {
  return (r: number) => {
    const c = new MixflowClient(addr);
    return { call: (i: number) => c.nextBatch(runId, firstStep + i, r % 16, 16), close: () => c.close() };
  };
}

/** The baseline's unary Fetch of a pre-built buffer of `bytes` bytes. */
function baselineUnary(port: number, bytes: number) {
  const def = protoLoader.loadSync(path.join(here, "support/baseline.proto"), { keepCase: true, longs: Number });
  const Ctor = (grpc.loadPackageDefinition(def).bench as grpc.GrpcObject).Baseline as grpc.ServiceClientConstructor;
  return () => {
    const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const fetch = (c.Fetch as (req: unknown, cb: (e: Error | null, m: unknown) => void) => void).bind(c);
    return {
      call: () => new Promise<unknown>((res, rej) => fetch({ bytes, count: 1 }, (e, m) => (e ? rej(e) : res(m)))),
      close: () => c.close(),
    };
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-bench-"));
  const files = ["a", "b", "c", "d"].map((n) => writeTokens(dir, n, 8 * MiB));
  const domains = files.map((p, i) => ({ name: `d${i}`, train: { format: "tokens", paths: [p], dtype: "uint16", mode: "windows" } }));
  const config = {
    dataDir: path.join(dir, "state"),
    listen: "127.0.0.1:0",
    metrics: { enabled: false },
    journal: { durability: "none" },
    runs: [
      { id: "stream", batchSize: 512, seqLen: 1023, seed: 1, domains },
      { id: "unary", batchSize: 512, worldSize: 16, seqLen: 1023, seed: 2, domains },
    ],
  };
  const cfgPath = path.join(dir, "mixflow.json");
  fs.writeFileSync(cfgPath, JSON.stringify(config));
  const mix = await startChild(["src/cli/main.ts", "serve", "--config", cfgPath]);
  const base = await startChild(["bench/support/baseline-server.ts"]);
  const addr = mix.line.grpc as string;
  const port = base.line.port as number;
  try {
    await streamMixflow(addr, "stream"); // warm up both
    await streamBaseline(port);
    let bestMix = 0;
    let bestBase = 0;
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate the order so drift in background load hits both sides alike.
      const [b, m] = r % 2 === 0
        ? [await streamBaseline(port), await streamMixflow(addr, "stream")]
        : await streamMixflow(addr, "stream").then(async (mm) => [await streamBaseline(port), mm] as const);
      console.log(`round ${r + 1}: baseline ${b.toFixed(0)} MB/s, mixflow ${m.toFixed(0)} MB/s, ratio ${(m / b).toFixed(2)}`);
      bestBase = Math.max(bestBase, b);
      bestMix = Math.max(bestMix, m);
      ratios.push(m / b);
    }
    const medianRatio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
    // Unary: baseline and mixflow alternately, so background load hits both alike.
    const UNARY_BYTES = 64 * 1024;
    await unaryLatency(16, baselineUnary(port, UNARY_BYTES)); // warm-up
    const baseLat = await unaryLatency(16, baselineUnary(port, UNARY_BYTES));
    const lat = await unaryLatency(16, mixflowUnary(addr, "unary", 1000));
    const baseLat2 = await unaryLatency(16, baselineUnary(port, UNARY_BYTES));
    const baseAll = [...baseLat, ...baseLat2].sort((a, b) => a - b);
    const single = await unaryLatency(1, mixflowUnary(addr, "unary", 5000));
    const baseSingle = await unaryLatency(1, baselineUnary(port, UNARY_BYTES));
    const result = {
      mixflow_MBps: Number(bestMix.toFixed(1)),
      baseline_MBps: Number(bestBase.toFixed(1)),
      ratio: Number((bestMix / bestBase).toFixed(3)),
      median_round_ratio: Number(medianRatio.toFixed(3)),
      batches_per_s: Number(bestMix.toFixed(1)),
      p50_ms: Number(pct(lat, 50).toFixed(3)),
      p99_ms: Number(pct(lat, 99).toFixed(3)),
      baseline_p50_ms: Number(pct(baseAll, 50).toFixed(3)),
      baseline_p99_ms: Number(pct(baseAll, 99).toFixed(3)),
      p99_ratio: Number((pct(lat, 99) / pct(baseAll, 99)).toFixed(2)),
      single_rank_p50_ms: Number(pct(single, 50).toFixed(3)),
      single_rank_p99_ms: Number(pct(single, 99).toFixed(3)),
      baseline_single_p50_ms: Number(pct(baseSingle, 50).toFixed(3)),
      batch_bytes: MiB,
      unary_batch_bytes: UNARY_BYTES,
      unary_ranks: 16,
    };
    console.log(JSON.stringify(result));
  } finally {
    mix.child.kill("SIGTERM");
    base.child.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
