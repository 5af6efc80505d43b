/**
 * The rooms of a run, each constructed on its own with fakes for what it is handed (a
 * write function, a clock, timers): the version book, admission and the lease, report
 * intake's dedup windows, stream pacing and the aggregation queue. No Run, no server.
 */
import { describe, expect, it } from "vitest";
import { EventType, type RunEvent, type Version } from "../../src/history/events.js";
import { recordOfSlice, sliceOfRecord, type SliceReport } from "../../src/runs/aggregator.js";
import { MixflowError } from "../../src/errors.js";
import { Admission, LEASE_CHUNK } from "../../src/runs/admission.js";
import { AggregationQueue } from "../../src/runs/aggregation.js";
import { ReportIntake } from "../../src/runs/intake.js";
import { Pacer } from "../../src/runs/pacing.js";
import { VersionBook } from "../../src/runs/versions.js";
import { FakeClock } from "./harness.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function version(n: number, fromStep: number): Omit<Version, never> & { runId: string } {
  return { runId: "r", version: n, fromStep, weights: [0.5, 0.5], competence: null, reason: `v${n}`, committedAtStep: n - 2 };
}

function signals(step: number, offset: number, slots: number, hash = `h${step}:${offset}`): SliceReport {
  return { step, offset, slots, hash, lossSum: [1, 1], count: [slots / 2, slots / 2], sampleLosses: null, refLossSum: null, refLosses: null, evalLoss: null };
}

describe("VersionBook", () => {
  it("publishes each version once, in order, only when durable; watchers get null at close", () => {
    const applied: number[] = [];
    const published: number[] = [];
    const heard: (number | null)[] = [];
    const book = new VersionBook(
      (v) => applied.push(v.version),
      (v) => published.push(v.version),
    );
    const un = book.watch((v) => heard.push(v ? v.version : null));
    book.apply(version(1, 0));
    book.apply(version(2, 5), false);
    expect(applied).toEqual([1, 2]);
    expect(book.all.map((v) => v.version)).toEqual([1, 2]);
    expect(book.published.map((v) => v.version)).toEqual([1]);
    expect(book.current.version).toBe(1);
    expect(heard).toEqual([1]);
    book.markDurable();
    book.markDurable();
    expect(heard).toEqual([1, 2]);
    expect(published).toEqual([1, 2]);
    expect(book.current.version).toBe(2);
    book.closed();
    expect(heard).toEqual([1, 2, null]);
    un();
    book.apply(version(3, 9));
    expect(heard).toEqual([1, 2, null]);
    expect(book.watcherCount).toBe(0);
  });
});

describe("Admission", () => {
  function admission(over: Partial<{ maxLookahead: number; fixedWeights: boolean; bound: () => number }> = {}) {
    const writes: RunEvent[][] = [];
    let hold: (() => void) | null = null;
    let holding = false;
    const errors: unknown[] = [];
    let closed = false;
    const a: Admission = new Admission({
      runId: "r",
      maxLookahead: over.maxLookahead ?? 100,
      fixedWeights: over.fixedWeights ?? false,
      write: (events) => {
        writes.push([...events]);
        if (!holding) return Promise.resolve();
        return new Promise<void>((r) => (hold = r));
      },
      servedBound: over.bound ?? (() => a.localBound),
      assertOpen: () => {
        if (closed) throw new MixflowError("FAILED_PRECONDITION", "closed");
      },
      onBackgroundError: (_s, e) => errors.push(e),
    });
    return {
      a,
      writes,
      errors,
      holdWrites: (on: boolean) => (holding = on),
      release: () => hold?.(),
      close: () => (closed = true),
    };
  }

  it("leases before the first step, renews in the background half a chunk before the end", async () => {
    const { a, writes } = admission();
    await a.admit(0);
    expect(writes.map((w) => w.map((e) => e.type === EventType.Lease && e.body.upTo))).toEqual([[LEASE_CHUNK]]);
    expect(a.frontier).toBe(0);
    await a.admit(LEASE_CHUNK / 2 - 1);
    expect(writes).toHaveLength(1);
    await a.admit(LEASE_CHUNK / 2);
    await tick();
    expect(writes.map((w) => w.map((e) => e.type === EventType.Lease && e.body.upTo))).toEqual([[LEASE_CHUNK], [LEASE_CHUNK / 2 + LEASE_CHUNK]]);
    expect(a.snapshotLease).toBe(LEASE_CHUNK / 2 + LEASE_CHUNK);
  });

  it("a held step waits for the release; steps before it do not", async () => {
    const { a } = admission();
    await a.admit(3);
    const release = a.hold(5);
    await a.admit(4);
    let done = false;
    const p = a.admit(5).then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    expect(a.frontier).toBe(4);
    release();
    await p;
    expect(a.frontier).toBe(5);
  });

  it("refuses a step past maxLookahead from the served bound (not for fixed weights)", () => {
    const { a } = admission({ maxLookahead: 4 });
    expect(() => a.checkLookahead(3)).not.toThrow(); // bound 0: frontier -1, 3 - (-1) = 4
    expect(() => a.checkLookahead(4)).toThrow(/5 steps past the serving frontier \(step -1\)/);
    const cluster = admission({ maxLookahead: 4, bound: () => 10 });
    expect(() => cluster.a.checkLookahead(13)).not.toThrow();
    expect(() => admission({ maxLookahead: 4, fixedWeights: true }).a.checkLookahead(1_000_000)).not.toThrow();
  });

  it("recovery: the bound is the journaled lease; a drained lease replaces it", () => {
    const { a } = admission();
    a.replayLease(64, false);
    a.replayLease(32, false);
    a.finishRecovery();
    expect(a.localBound).toBe(64);
    const b = admission().a;
    b.replayLease(64, false);
    b.replayLease(40, true);
    b.finishRecovery();
    expect(b.localBound).toBe(40);
  });

  it("a closed run refuses after the wait, without moving the frontier", async () => {
    const { a, holdWrites, release, close } = admission();
    holdWrites(true);
    const p = a.admit(0);
    close();
    release();
    await expect(p).rejects.toThrow(/closed/);
    expect(a.frontier).toBe(-1);
  });
});

describe("ReportIntake", () => {
  const s = (step: number, offset = 0, slots = 8, worldSize = 2) => ({ step, offset, slots, worldSize });

  it("new, duplicate, conflicting, in flight and stale", async () => {
    const i = new ReportIntake("r", 16);
    expect(i.classify(s(0), "a", -1).kind).toBe("new");
    const e = signals(0, 0, 8, "a");
    i.remember(e);
    expect(i.classify(s(0), "a", -1).kind).toBe("duplicate");
    expect(() => i.classify(s(0), "b", -1)).toThrow(/already reported with different values/);
    expect(i.classify(s(0), "b", 0).kind).toBe("stale");
    expect(i.classify(s(0), "a", 0).kind).toBe("duplicate");
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const writing = i.writing(signals(1, 0, 8, "c"), done);
    const c = i.classify(s(1), "c", 5);
    expect(c.kind).toBe("in-flight"); // even past lastAggregated: its write is not durable yet
    expect(() => i.classify(s(1), "d", -1)).toThrow(/different values/);
    expect(i.memoryStats().inFlight).toBe(1);
    finish();
    await writing;
    expect(i.memoryStats().inFlight).toBe(0);
    expect(i.noteStale()).toBe(true);
    expect(i.noteStale()).toBe(false);
    expect(i.staleReports).toBe(2);
  });

  it("names a world-size mismatch when refusing", () => {
    const i = new ReportIntake("r", 16);
    i.remember(signals(0, 0, 8, "a"));
    expect(() => i.refuseOverlap(s(0, 0, 4, 4), { offset: 0, slots: 8 })).toThrow(/world_size 4 \(4 slots per rank\) does not match .* world_size 2 \(8 slots per rank\)/);
    expect(() => i.refuseOverlap(s(1, 0, 4, 4), { offset: 0, slots: 8 })).toThrow(/overlaps an already reported slice \[0, 8\) of step 1/);
  });

  it("the dedup window is bounded: the oldest hashes go first", () => {
    const i = new ReportIntake("r", 16);
    const n = 65_536 + 10;
    for (let k = 0; k < n; k++) i.remember(signals(k, 0, 8, `h${k}`));
    expect(i.memoryStats().recentHashes).toBe(65_536);
    expect(i.classify(s(5), "other", -1).kind).toBe("new"); // forgotten
    expect(i.classify(s(n - 1), `h${n - 1}`, -1).kind).toBe("duplicate");
    const restored = new ReportIntake("r", 16);
    restored.restoreHashes(i.hashEntries());
    expect(restored.classify(s(n - 1), `h${n - 1}`, -1).kind).toBe("duplicate");
  });
});

describe("Pacer", () => {
  it("holds a stream `ahead` steps past its rank's last report, wakes it at the next report, releases a stalled rank on the fake clock", async () => {
    const clock = new FakeClock();
    const p = new Pacer(clock.now, clock, 1_000);
    expect(p.mayServeAhead(0, 8, 99, 2)).toBe(true); // not paced
    p.start(0, 8, 10);
    expect(p.mayServeAhead(0, 8, 11, 2)).toBe(true);
    expect(p.mayServeAhead(0, 8, 12, 2)).toBe(false);
    const stop = new AbortController();
    let woke = 0;
    const w = p.waitForReport(0, 8, stop.signal).then(() => woke++);
    p.noteReported(8, 8, 10); // another rank: no wake
    await tick();
    expect(woke).toBe(0);
    p.noteReported(0, 8, 10);
    await w;
    expect(woke).toBe(1);
    expect(p.mayServeAhead(0, 8, 12, 2)).toBe(true);
    expect(p.mayServeAhead(0, 8, 13, 2)).toBe(false);
    expect(clock.pending).toBe(0); // the wait's timer was cancelled
    const stalled = p.waitForReport(0, 8, stop.signal).then(() => woke++);
    clock.advance(999);
    await tick();
    expect(woke).toBe(1);
    clock.advance(1);
    await stalled;
    expect(woke).toBe(2);
    expect(p.mayServeAhead(0, 8, 13, 2)).toBe(true); // released
    const aborted = p.waitForReport(0, 8, stop.signal);
    stop.abort();
    await aborted;
    expect(clock.pending).toBe(0);
  });
});

describe("slice reports", () => {
  it("keep per-sample losses as floats in memory; the journal record's base64 reads back to the same values", () => {
    const losses = Float32Array.from([0.1, 2.5, 3.75, 1e-7]);
    const r: SliceReport = { ...signals(3, 4, 4), sampleLosses: losses, refLosses: null };
    const e = recordOfSlice("r", r);
    expect(typeof e.sampleLosses).toBe("string");
    expect(e).toMatchObject({ runId: "r", step: 3, offset: 4, slots: 4, refLosses: null });
    const back = sliceOfRecord(e);
    expect(back.sampleLosses).toBeInstanceOf(Float32Array);
    expect([...back.sampleLosses!]).toEqual([...losses]);
    // A view into a larger buffer encodes only its own bytes.
    const big = new Float32Array(8).fill(9);
    big.set(losses, 2);
    expect(recordOfSlice("r", { ...r, sampleLosses: big.subarray(2, 6) }).sampleLosses).toBe(e.sampleLosses);
    // Older journals have no refLosses key.
    const { refLosses: _, ...old } = e;
    expect(sliceOfRecord(old).refLosses).toBeNull();
  });
});

describe("AggregationQueue", () => {
  function queue(timeoutMs = 1_000) {
    const clock = new FakeClock();
    const folded: [number, number[]][] = [];
    const q: AggregationQueue = new AggregationQueue({
      batchSize: 16,
      timeoutMs,
      now: clock.now,
      timers: clock,
      isOpen: () => true,
      fold: async (step, slices) => {
        folded.push([step, slices.map((x) => x.offset)]);
        q.finish(step);
      },
      onError: (_s, e) => {
        throw e;
      },
    });
    return { q, clock, folded };
  }

  it("folds a complete step at once, a partial one when the fake clock passes its timeout, in order", async () => {
    const { q, clock, folded } = queue();
    q.aggregateFor(0).add(signals(0, 0, 8));
    q.schedule();
    await q.idle();
    expect(folded).toEqual([]);
    q.aggregateFor(1).add(signals(1, 0, 8));
    q.aggregateFor(1).add(signals(1, 8, 8));
    expect(q.isComplete(1)).toBe(true);
    q.schedule();
    await q.idle();
    expect(folded).toEqual([]); // step 1 waits for step 0
    clock.advance(999);
    await q.idle();
    expect(folded).toEqual([]);
    clock.advance(1);
    await q.idle();
    expect(folded).toEqual([
      [0, [0]],
      [1, [0, 8]],
    ]);
    expect(q.lastAggregated).toBe(1);
    expect(q.pendingCount).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it("skips a step nobody reported once a later one has waited out the timeout", async () => {
    const { q, clock, folded } = queue();
    clock.advance(10);
    q.aggregateFor(2).add(signals(2, 0, 8));
    q.schedule();
    await q.idle();
    clock.advance(1_000);
    await q.idle();
    expect(folded).toEqual([[2, [0]]]);
    expect(q.lastAggregated).toBe(2);
  });
});
