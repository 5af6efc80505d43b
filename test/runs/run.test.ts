/**
 * `Run` constructed directly (test/runs/harness.ts): a journal in memory, a fake clock, real
 * domains on disk, no server and no sleeps. Admission and the lease, the commit gate and the
 * version frontier, report dedup and stale reports, the aggregation timeout, watchers, and
 * recovery from the journal the run wrote.
 */
import { afterEach, describe, expect, it } from "vitest";
import { EventType } from "../../src/history/events.js";
import { MixflowError } from "../../src/errors.js";
import { LEASE_CHUNK, type Run } from "../../src/runs/run.js";
import { encodeServed as encodeBatch } from "../../src/server/batch-encoder.js";
import type { Version } from "../../src/history/events.js";
import { losses, makeRun, type Harness } from "./harness.js";

const open: Run[] = [];
function harness(...a: Parameters<typeof makeRun>): Harness {
  const h = makeRun(...a);
  open.push(h.run);
  return h;
}
afterEach(() => {
  for (const r of open.splice(0)) r.dispose();
});

/** Serve and report every rank of steps [from, to) (worldSize 2, batchSize 16). */
async function train(run: Run, from: number, to: number): Promise<void> {
  for (let s = from; s < to; s++) {
    await run.batch(s, 0, 2);
    await run.batch(s, 1, 2);
    await run.report(s, 0, 2, losses(8, 1 + s));
    await run.report(s, 1, 2, losses(8, 2 + s));
    await run.idle();
  }
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof MixflowError ? e.code : `not a MixflowError: ${String(e)}`;
  }
  return "no error";
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof MixflowError ? e.code : `not a MixflowError: ${String(e)}`;
  }
  return "no error";
}

describe("Run with a fake journal and clock", () => {
  it("leases steps before serving them, renews ahead, and refuses a step past maxLookahead without moving anything", async () => {
    const { run, log } = harness({ maxLookahead: 8 });
    await run.batch(0, 0, 2);
    expect(log.ofType(EventType.Lease).map((e) => e.body.upTo)).toEqual([LEASE_CHUNK]);
    expect(run.frontier).toBe(0);
    // Within LEASE_CHUNK / 2 of the lease end: renewed in the background.
    for (let s = 1; s <= 8; s++) await run.batch(s, 0, 2);
    await run.batch(16, 0, 2);
    await Promise.resolve();
    expect(log.ofType(EventType.Lease).map((e) => e.body.upTo)).toEqual([LEASE_CHUNK, 16 + LEASE_CHUNK]);
    const writes = log.writes;
    expect(await codeOf(run.batch(16 + 9, 0, 2))).toBe("OUT_OF_RANGE");
    expect(run.frontier).toBe(16);
    expect(log.writes).toBe(writes);
    // The same step, asked again, is the same bytes.
    expect(encodeBatch(await run.batch(3, 0, 2)).equals(encodeBatch(await run.batch(3, 0, 2)))).toBe(true);
  });

  it("serving waits for the lease to be durable", async () => {
    const { run, log } = harness();
    log.hold((events) => events.some((e) => e.type === EventType.Lease));
    let served = false;
    const p = run.batch(0, 0, 2).then(() => (served = true));
    await new Promise((r) => setImmediate(r));
    expect(served).toBe(false);
    expect(run.frontier).toBe(-1);
    log.release();
    await p;
    expect(run.frontier).toBe(0);
  });

  it("a new version takes effect past the frontier, and serving at it waits until its record is durable", async () => {
    const { run, log } = harness();
    for (let s = 0; s <= 5; s++) await run.batch(s, 0, 2);
    await run.batch(0, 1, 2);
    log.hold((events) => events.some((e) => e.type === EventType.Version));
    await run.report(0, 0, 2, losses(8));
    await run.report(0, 1, 2, losses(8));
    await new Promise((r) => setImmediate(r));
    expect(log.heldCount).toBe(1);
    expect(run.versions.length).toBe(2); // applied (a snapshot has it) ...
    expect(run.publishedVersions.length).toBe(1); // ... not published
    expect(run.versions[1]!.fromStep).toBe(6); // past the frontier (5)
    expect((await run.batch(5, 1, 2)).version).toBe(1); // before the gate: served at once
    let served = false;
    const gated = run.batch(6, 0, 2).then((b) => {
      served = true;
      return b;
    });
    await new Promise((r) => setImmediate(r));
    expect(served).toBe(false);
    log.release();
    expect((await gated).version).toBe(2);
    await run.idle();
    expect(run.publishedVersions.length).toBe(2);
  });

  it("a re-sent identical report is a duplicate recorded once; a different one is refused while the step is open, acknowledged as stale after", async () => {
    const { run, log } = harness();
    await run.batch(0, 0, 2);
    await run.batch(0, 1, 2);
    const first = await run.report(0, 0, 2, losses(8, 1));
    expect(first).toMatchObject({ duplicate: false, stepComplete: false });
    const again = await run.report(0, 0, 2, losses(8, 1));
    expect(again).toMatchObject({ duplicate: true, stepComplete: false });
    expect(log.ofType(EventType.Signals)).toHaveLength(1);
    expect(await codeOf(run.report(0, 0, 2, losses(8, 2)))).toBe("FAILED_PRECONDITION");
    expect(log.ofType(EventType.Signals)).toHaveLength(1);
    // A report for a step nobody was served is refused.
    expect(await codeOf(run.report(1, 0, 2, losses(8)))).toBe("FAILED_PRECONDITION");
    await run.report(0, 1, 2, losses(8, 1));
    await run.idle();
    expect(run.lastAggregated).toBe(0);
    const signals = log.ofType(EventType.Signals).length;
    const stale = await run.report(0, 0, 2, losses(8, 3));
    expect(stale).toEqual({ duplicate: true, stepComplete: true, version: 2 });
    expect(run.staleReports).toBe(1);
    expect(log.ofType(EventType.Signals)).toHaveLength(signals);
    // Concurrent identical reports: one write, both acknowledged after it.
    await run.batch(1, 0, 2);
    log.hold((events) => events.some((e) => e.type === EventType.Signals));
    const a = run.report(1, 0, 2, losses(8, 5));
    const b = run.report(1, 0, 2, losses(8, 5));
    await new Promise((r) => setImmediate(r));
    expect(log.heldCount).toBe(1);
    log.release();
    expect((await a).duplicate).toBe(false);
    expect((await b).duplicate).toBe(true);
    expect(log.ofType(EventType.Signals)).toHaveLength(signals + 1);
  });

  it("a world-size mismatch is named as such", async () => {
    const { run } = harness();
    await run.batch(0, 0, 2);
    await run.batch(0, 0, 4);
    await run.report(0, 0, 2, losses(8));
    await expect(run.report(0, 0, 4, losses(4))).rejects.toThrow(/world_size 4 \(4 slots per rank\) does not match the other reports of step 0/);
  });

  it("a partly reported step is aggregated when the fake clock passes the timeout, with no real sleep", async () => {
    const { run, log, clock } = harness({ aggregationTimeoutMs: 5_000 });
    await run.batch(0, 0, 2);
    await run.report(0, 0, 2, losses(8));
    await run.idle();
    expect(run.lastAggregated).toBe(-1);
    expect(clock.pending).toBe(1);
    clock.advance(4_999);
    await run.idle();
    expect(run.lastAggregated).toBe(-1);
    clock.advance(1);
    await run.idle();
    expect(run.lastAggregated).toBe(0);
    const agg = log.ofType(EventType.Aggregated);
    expect(agg.map((e) => [e.body.step, e.body.slices])).toEqual([[0, [0]]]);
    expect(run.versions.at(-1)!.reason).toBe("update 1 saw 8 samples");
  });

  it("a step nobody reported is skipped once a later step has waited out the timeout", async () => {
    const { run, clock } = harness({ aggregationTimeoutMs: 1_000 });
    await run.batch(0, 0, 2);
    await run.batch(1, 0, 2);
    await run.report(1, 0, 2, losses(8));
    await run.idle();
    expect(run.lastAggregated).toBe(-1);
    clock.advance(1_000);
    await run.idle();
    expect(run.lastAggregated).toBe(1);
  });

  it("watchers hear each published version once, in order, and null at close", async () => {
    const { run, log } = harness();
    const heard: (number | null)[] = [];
    run.watch((v: Version | null) => heard.push(v ? v.version : null));
    await train(run, 0, 3);
    expect(heard).toEqual([2, 3, 4]);
    await run.close();
    expect(heard).toEqual([2, 3, 4, null]);
    expect(log.ofType(EventType.RunClosed)).toHaveLength(1);
    expect(await codeOf(run.batch(4, 0, 2))).toBe("FAILED_PRECONDITION");
  });

  it("an eval requested by the strategy is due on rank 0's batch of that step, with the same probes every time", async () => {
    const { run, log } = harness({}, (await import("./harness.js")).rotating(3));
    await train(run, 0, 1);
    const evalStep = log.ofType(EventType.Aggregated)[0]!.body.evalStep;
    expect(evalStep).toBe(3);
    const b0 = await run.batch(3, 0, 2);
    const b1 = await run.batch(3, 1, 2);
    expect(b0.eval).not.toBeNull();
    expect(b1.eval).toBeNull();
    expect(b0.eval!.map((p) => p.domain)).toEqual([0, 1, 2]);
    expect(run.probes()).toBe(b0.eval);
  });

  it("after a failed journal write nothing is acknowledged, not even a duplicate (UNAVAILABLE)", async () => {
    const { run, log } = harness();
    await run.batch(0, 0, 2);
    await run.report(0, 0, 2, losses(8));
    log.failWith = new MixflowError("UNAVAILABLE", "disk gone");
    await run.batch(0, 1, 2);
    expect(await codeOf(run.report(0, 1, 2, losses(8)))).toBe("UNAVAILABLE");
    log.failWith = null;
    expect(await codeOf(run.report(0, 0, 2, losses(8)))).toBe("UNAVAILABLE");
  });

  it("recovers from its own journal: same versions, state and batch bytes; new versions start past the lease", async () => {
    const h = harness();
    await train(h.run, 0, 4);
    await h.run.batch(4, 0, 2);
    await h.run.report(4, 0, 2, losses(8, 7)); // pending at the "crash"
    const again = await h.recover();
    open.push(again);
    expect(again.versions).toEqual(h.run.versions);
    expect(again.lastAggregated).toBe(h.run.lastAggregated);
    const a = h.run.snapshot();
    const b = again.snapshot();
    expect({ ...b, leasedUpTo: 0 }).toEqual({ ...a, leasedUpTo: 0 });
    expect(b.leasedUpTo).toBe(LEASE_CHUNK);
    expect(again.servedBound).toBe(LEASE_CHUNK);
    for (const s of [0, 3, 5]) {
      expect(encodeBatch(await again.batch(s, 1, 2)).equals(encodeBatch(await h.run.batch(s, 1, 2)))).toBe(true);
    }
    // The pending step completes on the recovered run; its version starts past the old lease.
    await again.report(4, 1, 2, losses(8, 7));
    await again.idle();
    expect(again.lastAggregated).toBe(4);
    expect(again.versions.at(-1)!.fromStep).toBeGreaterThanOrEqual(LEASE_CHUNK);
  });

  it("per-sample losses reach the strategy as the reported float32 values, live and after recovery", async () => {
    const seen: number[][] = [];
    const base = (await import("./harness.js")).rotating();
    const spy = {
      ...base,
      update: (ctx: never, p: never, st: never, sig: { samples: { loss: number[] } | null }) => {
        seen.push(sig.samples ? [...sig.samples.loss] : []);
        return (base.update as (...a: unknown[]) => ReturnType<typeof base.update>)(ctx, p, st, sig);
      },
    } as typeof base;
    const h = harness({}, spy);
    const values = Float32Array.from({ length: 8 }, (_, i) => 0.1 * (i + 1));
    const other = Float32Array.from({ length: 8 }, (_, i) => 1 / (i + 3));
    await h.run.batch(0, 0, 2);
    await h.run.batch(0, 1, 2);
    await h.run.report(0, 1, 2, { sample_losses: Buffer.from(other.buffer) });
    await h.run.report(0, 0, 2, { sample_losses: Buffer.from(values.buffer) });
    await h.run.idle();
    expect(seen).toEqual([[...values, ...other]]);
    open.push(await h.recover());
    expect(seen).toEqual([[...values, ...other], [...values, ...other]]);
  });

  it("bad geometry is refused before anything happens", () => {
    const { run, log } = harness();
    const writes = log.writes;
    expect(code(() => run.sliceOf(0, 2, 2))).toBe("INVALID_ARGUMENT");
    expect(code(() => run.sliceOf(0, 0, 3))).toBe("INVALID_ARGUMENT");
    expect(code(() => run.sliceOf(1000, 0, 2))).toBe("OUT_OF_RANGE");
    expect(run.sliceOf(3, 1, 0)).toEqual({ step: 3, rank: 1, offset: 8, slots: 8, worldSize: 2 });
    expect(log.writes).toBe(writes);
  });

  it("a folded step's Aggregated record carries its slices, the served batch digest, and the content of the payloads the encoder wrote", async () => {
    const { run, log } = harness();
    const b0 = await run.batch(0, 0, 2);
    encodeBatch(b0);
    encodeBatch(await run.batch(0, 1, 2));
    await run.batch(1, 0, 2); // served, never encoded: no content digest for step 1
    await run.report(0, 0, 2, losses(8));
    await run.report(0, 1, 2, losses(8));
    await run.idle();
    const [agg] = log.ofType(EventType.Aggregated);
    expect(agg!.body).toMatchObject({ step: 0, slices: [0, 8], evalStep: null, digest: b0.digest });
    expect(agg!.body.content?.ranges).toEqual([0, 8, 8, 8]);
    expect(agg!.body.content?.domains.length).toBe(run.names.length);
    await run.report(1, 0, 2, losses(8));
    await run.report(1, 1, 2, losses(8));
    await run.idle();
    const second = log.ofType(EventType.Aggregated)[1]!.body;
    expect(second.step).toBe(1);
    expect(second.content).toBeUndefined();
  });
});
