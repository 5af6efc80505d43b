/**
 * The demo trainer: what a training loop looks like against mixflow, in TypeScript.
 * It streams its rank's batches, "trains" an online byte n-gram model on each document,
 * reports per-sample losses without blocking (SignalReporter), and answers eval requests
 * with per-domain losses on the server's probe windows.
 */
import { MixflowClient, type Batch } from "../../src/client/index.js";
import { ByteNgram } from "./ngram.js";

export interface TrainOptions {
  address: string;
  runId: string;
  rank?: number;
  worldSize?: number;
  /** Called after every step with what happened (for progress output). */
  onStep?: (b: Batch, meanLoss: number, evalLosses: Record<string, number> | null) => void;
}

export async function train(o: TrainOptions): Promise<{ steps: number; served: Map<string, number> }> {
  const client = new MixflowClient(o.address);
  const info = await client.getRun(o.runId);
  const names = info.domains.map((d) => d.name);
  const model = new ByteNgram();
  const reporter = client.reporter({ runId: o.runId, rank: o.rank ?? 0, worldSize: o.worldSize ?? 0 });
  const served = new Map<string, number>(names.map((n) => [n, 0]));
  let steps = 0;
  try {
    for await (const b of client.batches({ runId: o.runId, rank: o.rank ?? 0, worldSize: o.worldSize ?? 0, paced: true })) {
      // Eval first (before learning this step), on the fixed held-out probes.
      let evalLosses: Record<string, number> | null = null;
      if (b.evalRequested) {
        evalLosses = {};
        for (const p of b.probes) {
          let sum = 0;
          const n = p.sampleIndices.length;
          for (let i = 0; i < n; i++) sum += model.crossEntropy(p.text!.at(i), false);
          evalLosses[names[p.domain]!] = sum / Math.max(1, n);
        }
      }
      const losses = new Float32Array(b.slots);
      for (let i = 0; i < b.slots; i++) {
        losses[i] = model.crossEntropy(b.text!.at(i), true);
        const name = names[b.slotDomains[i]!]!;
        served.set(name, served.get(name)! + 1);
      }
      reporter.report(b.step, evalLosses ? { sampleLosses: losses, evalLosses } : { sampleLosses: losses });
      steps++;
      o.onStep?.(b, losses.reduce((x, y) => x + y, 0) / b.slots, evalLosses);
    }
    await reporter.flush();
  } finally {
    client.close();
  }
  return { steps, served };
}
