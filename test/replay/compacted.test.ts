/**
 * `replay simulate` over a compacted journal (journal.keepHistory: false). A step with one
 * rank's report in when the checkpoint is taken has that slice only in the snapshot's
 * pending list: its Signals record sat in a segment the compaction deleted. Simulate must
 * fold that step over both slices, exactly as the live server folded it (issue 11 suspected
 * it folded the step without the pending slice).
 */
import * as path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { readHistory } from "../../src/replay/history.js";
import { simulate } from "../../src/replay/simulate.js";
import { getStrategy } from "../../strategies/index.js";
import type { StepSignals } from "../../strategies/types.js";

let ts: TestServer | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await ts?.stop();
  ts = null;
});

/** The step at which one rank has reported when the checkpoint compacts the journal. */
const SPLIT = 6;
const STEPS = 10;

const lossesOf = (step: number, domains: Uint32Array): Float32Array => Float32Array.from(domains, (d, i) => 1 + d * 0.5 + ((step * 5 + i) % 7) * 0.01);

describe("replay simulate after a compaction", () => {
  it("folds the first step after the checkpoint over the snapshot's pending slice too, as the server did", async () => {
    const exp3 = getStrategy("exp3")!;
    const update = vi.spyOn(exp3, "update");
    const dir = tmpDir();
    const cfg = runConfigFor(dir, { strategy: { name: "exp3", params: { warmupSteps: 0 } } });
    ts = await startServer(dir, [cfg], { journal: { durability: "none", keepHistory: false } });
    const { client, server } = ts;
    const report = async (step: number, rank: number): Promise<void> => {
      const b = await client.nextBatch("r1", step, rank);
      await client.reportSignals({ runId: "r1", step, rank, sampleLosses: lossesOf(step, b.slotDomains) });
    };
    for (let step = 0; step < STEPS; step++) {
      await report(step, 0);
      if (step === SPLIT) {
        await server.registry.get("r1").idle();
        await server.registry.checkpoint();
      }
      await report(step, 1);
      await server.registry.get("r1").idle();
    }
    const live = new Map(update.mock.calls.map((c) => [c[3].step, c[3]] as [number, StepSignals]));
    await ts.stop();
    ts = null;

    const h = await readHistory(path.join(dir, "state"), "r1");
    expect(h.fromSnapshot).toBe(true);
    expect(h.aggregated.map((a) => a.step)).toEqual(Array.from({ length: STEPS - SPLIT }, (_, i) => SPLIT + i));

    update.mockClear();
    simulate(h, "exp3", { warmupSteps: 0 });
    const simulated = update.mock.calls.map((c) => c[3]);
    expect(simulated.map((s) => s.step)).toEqual(h.aggregated.map((a) => a.step));
    const first = simulated[0]!;
    expect(first.count.reduce((a, b) => a + b, 0)).toBe(cfg.batchSize);
    expect(first.samples?.loss.length).toBe(cfg.batchSize);
    for (const s of simulated) expect(s, `step ${s.step}`).toEqual(live.get(s.step));
  });
});
