import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

async function code(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    return { code: se.code, details: se.details };
  }
  throw new Error("expected the call to fail");
}

async function setup(over: Record<string, unknown> = {}): Promise<TestServer> {
  const dir = tmpDir();
  ts = await startServer(dir, [runConfigFor(dir, over)]);
  return ts;
}

describe("reporting signals", () => {
  it("aggregates both ranks' reports per step", async () => {
    const { client: c } = await setup();
    const b0 = await c.nextBatch("r1", 0, 0);
    const b1 = await c.nextBatch("r1", 0, 1);
    const first = await c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: new Float32Array(b0.slots).fill(2) });
    expect(first).toEqual({ duplicate: false, stepComplete: false, version: 1 });
    expect((await c.getRun("r1")).lastAggregatedStep).toBe(-1);
    const second = await c.reportSignals({ runId: "r1", step: 0, rank: 1, sampleLosses: new Float32Array(b1.slots).fill(3) });
    expect(second.stepComplete).toBe(true);
    await ts!.server.registry.get("r1").idle();
    expect((await c.getRun("r1")).lastAggregatedStep).toBe(0);
  });

  it("per-domain sums and counts are accepted and checked against the slice", async () => {
    const { client: c } = await setup();
    const b = await c.nextBatch("r1", 0, 0);
    const counts = new Map<number, number>();
    for (const d of b.slotDomains) counts.set(d, (counts.get(d) ?? 0) + 1);
    const domainLosses = [...counts].map(([domain, count]) => ({ domain, lossSum: count * 1.5, count }));
    const ok = await c.reportSignals({ runId: "r1", step: 0, rank: 0, domainLosses });
    expect(ok.duplicate).toBe(false);
    const [d0, n0] = [...counts][0]!;
    const tooMany = await code(c.reportSignals({ runId: "r1", step: 0, rank: 1, domainLosses: [{ domain: d0, lossSum: 1, count: n0 + 9 }] }));
    expect(tooMany.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(tooMany.details).toMatch(/exceeds/);
  });

  it("a re-sent identical report is acknowledged as a duplicate; different values are refused", async () => {
    const { client: c } = await setup();
    const b = await c.nextBatch("r1", 0, 0);
    const losses = Float32Array.from({ length: b.slots }, (_, i) => 1 + i / 10);
    await c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: losses });
    const again = await c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: losses });
    expect(again.duplicate).toBe(true);
    const other = await code(c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: losses.map((x) => x + 1) }));
    expect(other.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(other.details).toMatch(/different values/);
  });

  it("a re-report of an aggregated step is acknowledged whatever its values, counted, and not journaled", async () => {
    const { client: c, server } = await setup();
    const slots = [(await c.nextBatch("r1", 0, 0)).slots, (await c.nextBatch("r1", 0, 1)).slots];
    await c.nextBatch("r1", 1, 0);
    for (const rank of [0, 1]) await c.reportSignals({ runId: "r1", step: 0, rank, sampleLosses: new Float32Array(slots[rank]!).fill(2) });
    const run = server.registry.get("r1");
    await run.idle();
    expect(run.lastAggregated).toBe(0);
    const before = JSON.stringify(run.snapshot());
    // A resumed trainer re-trains step 0: its losses differ slightly (nondeterministic kernels).
    for (const delta of [1e-4, 3]) {
      const again = await c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: new Float32Array(slots[0]!).fill(2 + delta) });
      expect(again).toEqual({ duplicate: true, stepComplete: true, version: run.currentVersion.version });
    }
    expect(JSON.stringify(run.snapshot())).toBe(before);
    expect(run.staleReports).toBe(2);
    // A step not aggregated yet still refuses a conflicting re-send.
    await c.reportSignals({ runId: "r1", step: 1, rank: 0, sampleLosses: new Float32Array(slots[0]!).fill(1) });
    const other = await code(c.reportSignals({ runId: "r1", step: 1, rank: 0, sampleLosses: new Float32Array(slots[0]!).fill(1.0001) }));
    expect(other.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(other.details).toMatch(/different values/);
  });

  it("bad input gets the right status with a message naming the problem, and changes nothing", async () => {
    const { client: c, server } = await setup();
    const b = await c.nextBatch("r1", 0, 0);
    const run = server.registry.get("r1");
    const before = JSON.stringify({ w: await c.getWeights("r1"), agg: run.lastAggregated, snap: run.snapshot() });
    const bad = (over: Partial<Parameters<typeof c.reportSignals>[0]>) =>
      code(c.reportSignals({ runId: "r1", step: 0, rank: 0, sampleLosses: new Float32Array(b.slots).fill(1), ...over }));
    const nan = new Float32Array(b.slots).fill(1);
    nan[3] = NaN;
    const cases: [Promise<{ code: number; details: string }>, number, RegExp][] = [
      [bad({ sampleLosses: nan }), grpc.status.INVALID_ARGUMENT, /sample_losses\[3\] is NaN/],
      [bad({ sampleLosses: new Float32Array(b.slots).fill(-1) }), grpc.status.INVALID_ARGUMENT, /finite and >= 0/],
      [bad({ sampleLosses: new Float32Array(b.slots).fill(Infinity) }), grpc.status.INVALID_ARGUMENT, /Infinity/],
      [bad({ sampleLosses: new Float32Array(3) }), grpc.status.INVALID_ARGUMENT, /expected 8 float32/],
      [bad({ sampleLosses: undefined, evalLosses: { nope: 1 } }), grpc.status.INVALID_ARGUMENT, /unknown domain "nope"/],
      [bad({ sampleLosses: undefined, domainLosses: [{ domain: 7, lossSum: 1, count: 1 }] }), grpc.status.INVALID_ARGUMENT, /not a domain index/],
      [bad({ sampleLosses: undefined }), grpc.status.INVALID_ARGUMENT, /empty report/],
      [bad({ step: 5 }), grpc.status.FAILED_PRECONDITION, /has not been served/],
      [bad({ step: 1000 }), grpc.status.OUT_OF_RANGE, /past the end/],
      [bad({ rank: 2 }), grpc.status.INVALID_ARGUMENT, /rank 2 is out of range/],
      [bad({ worldSize: 3 }), grpc.status.INVALID_ARGUMENT, /does not divide/],
      [bad({ runId: "ghost" }), grpc.status.NOT_FOUND, /not found/],
      [code(c.nextBatch("r1", 1000, 0)), grpc.status.OUT_OF_RANGE, /maxSteps 1000/],
      [code(c.nextBatch("r1", 2 ** 60, 0)), grpc.status.INVALID_ARGUMENT, /2\^53/],
      [code(c.nextBatch("", 0, 0)), grpc.status.INVALID_ARGUMENT, /run_id is required/],
      [code(c.createRun({ id: "x" })), grpc.status.INVALID_ARGUMENT, /domains/],
      [code(c.createRun({ ...runConfigFor(ts!.dir), id: "x2", batchSize: 10, worldSize: 3 })), grpc.status.INVALID_ARGUMENT, /worldSize: batchSize 10 is not divisible/],
      [code(c.createRun({ ...runConfigFor(ts!.dir), id: "x3", strategy: { name: "nope" } })), grpc.status.INVALID_ARGUMENT, /unknown strategy "nope"/],
      [code(c.createRun({ ...runConfigFor(ts!.dir), id: "x4", domains: [{ name: "m", train: { format: "jsonl", paths: ["missing.jsonl"] } }] })), grpc.status.INVALID_ARGUMENT, /missing.jsonl: file not found/],
      [code(c.createRun(runConfigFor(ts!.dir))), grpc.status.ALREADY_EXISTS, /already exists/],
    ];
    for (const [p, want, msg] of cases) {
      const got = await p;
      expect({ code: got.code, details: got.details }).toEqual({ code: want, details: expect.stringMatching(msg) });
    }
    const after = JSON.stringify({ w: await c.getWeights("r1"), agg: run.lastAggregated, snap: run.snapshot() });
    expect(after).toBe(before);
    expect((await c.listRuns()).map((r) => r.runId)).toEqual(["r1"]);
  });

  it("a closed run refuses batches and reports but still answers GetRun", async () => {
    const { client: c } = await setup();
    await c.nextBatch("r1", 0, 0);
    const closed = await c.closeRun("r1");
    expect(closed.state).toBe("closed");
    expect((await code(c.nextBatch("r1", 1, 0))).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await c.getRun("r1")).state).toBe("closed");
  });
});
