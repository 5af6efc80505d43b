/**
 * Edge limits over real gRPC calls (report rate, distinct ranks, streams per connection,
 * domains and config size, request size) and the per-run memory bound: serving and
 * reporting many steps leaves every per-run collection at a fixed size.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MixflowServer } from "../../src/server/server.js";
import { makeDataDir, RawMixer, removeDir, runConfigFor, startServer } from "./helpers.js";

const f32 = (xs: number[]) => Buffer.from(new Float32Array(xs).buffer);
/** The first n domains of the helper's run config. */
const domains = (n: number) => (runConfigFor("x").domains as unknown[]).slice(0, n);

describe("edge limits", () => {
  let dir: string;
  let server: MixflowServer;
  let raw: RawMixer;

  beforeAll(async () => {
    dir = makeDataDir();
    server = await startServer(dir, {
      limits: { reportsPerSecond: 1, reportBurst: 5, maxRanksPerRun: 4, maxStreamsPerConnection: 2, maxDomainsPerRun: 2, maxConfigBytes: 2048, maxReceiveMessageBytes: 4096 },
      runs: [{ ...runConfigFor("lim"), domains: domains(2) }],
    });
    raw = new RawMixer(server.address);
  });
  afterAll(async () => {
    raw.close();
    await server.stop();
    removeDir(dir);
  });

  it("reports beyond the per-run rate get RESOURCE_EXHAUSTED naming the limit, and pass again after refill", async () => {
    expect((await raw.unary("NextBatch", { run_id: "lim", step: 0, rank: 0 })).code).toBe(grpc.status.OK);
    const send = () => raw.unary("ReportSignals", { run_id: "lim", step: 0, rank: 0, sample_losses: f32([1, 1, 1, 1]) });
    // Bounded by count, not by the clock: the bucket (burst 5, 1 token a second) refills while
    // the calls run, so on a busy machine a few more may pass; what they may not do is pass
    // beyond the burst plus what the elapsed time refilled.
    const t0 = performance.now();
    let ok = 0;
    let over: Awaited<ReturnType<typeof send>> | null = null;
    for (let i = 0; i < 60 && !over; i++) {
      const r = await send();
      if (r.code === grpc.status.OK) ok++;
      else over = r;
    }
    const elapsedS = (performance.now() - t0) / 1000;
    expect(over?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(ok).toBeGreaterThanOrEqual(5); // the burst: first one recorded, then duplicates
    expect(ok).toBeLessThanOrEqual(5 + Math.ceil(elapsedS) + 1);
    expect(over!.details).toContain("limits.reportsPerSecond = 1");
    expect(over!.details).toContain("raise limits.reportsPerSecond");
    await new Promise((r) => setTimeout(r, 1100)); // one token back
    expect((await send()).code).toBe(grpc.status.OK);
  });

  it("distinct (world size, rank) pairs per run are capped; pairs already seen keep working", async () => {
    const nb = (rank: number, ws: number) => raw.unary("NextBatch", { run_id: "lim", step: 1, rank, world_size: ws });
    expect((await nb(1, 2)).code).toBe(grpc.status.OK); // (2,0) seen above: now 2 pairs
    expect((await nb(0, 4)).code).toBe(grpc.status.OK);
    expect((await nb(1, 4)).code).toBe(grpc.status.OK); // 4 pairs: at the limit
    const r = await nb(2, 4);
    expect(r.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.details).toContain("limits.maxRanksPerRun");
    expect((await nb(1, 2)).code).toBe(grpc.status.OK);
  });

  it("CreateRun over maxDomainsPerRun, maxRanksPerRun (worldSize) or maxConfigBytes is INVALID_ARGUMENT naming the field", async () => {
    const create = (cfg: unknown) => raw.unary("CreateRun", { config_json: JSON.stringify(cfg) });
    const many = await create(runConfigFor("many"));
    expect(many.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(many.details).toContain("domains: 3 domains, above limits.maxDomainsPerRun (2)");
    const wide = await create({ ...runConfigFor("wide", { batchSize: 8, worldSize: 8 }), domains: domains(1) });
    expect(wide.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(wide.details).toContain("worldSize: 8 ranks, above limits.maxRanksPerRun (4)");
    const big = await create({ ...runConfigFor("big"), padding: "x".repeat(3000) });
    expect(big.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(big.details).toMatch(/config_json is \d+ bytes, above limits\.maxConfigBytes \(2048\)/);
  });

  it("a request above maxReceiveMessageBytes is RESOURCE_EXHAUSTED and changes nothing", async () => {
    const r = await raw.unary("ReportSignals", { run_id: "lim", step: 0, rank: 0, sample_losses: Buffer.alloc(8192) });
    expect(r.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("server streams per connection are capped; another connection may still open streams; all are released", async () => {
    const watch = (c: RawMixer) => c.stream("WatchWeights", { run_id: "lim", after_version: 99 }, { deadlineMs: 800 });
    const first = [watch(raw), watch(raw)];
    await new Promise((r) => setTimeout(r, 150));
    expect(server.streamStats()).toEqual({ open: 2, connections: 1 });
    const third = await watch(raw);
    expect(third.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(third.details).toContain("limits.maxStreamsPerConnection");
    const other = new RawMixer(server.address, undefined, { "grpc.use_local_subchannel_pool": 1 });
    const otherCall = watch(other);
    await new Promise((r) => setTimeout(r, 150));
    expect(server.streamStats()).toEqual({ open: 3, connections: 2 });
    // Valid watches end by the client's deadline; each must give its slot back.
    for (const r of await Promise.all([...first, otherCall])) expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.streamStats()).toEqual({ open: 0, connections: 0 });
    other.close();
  });
});

describe("per-run memory does not grow with steps served", () => {
  it("serving and reporting 17,000 steps × 4 ranks leaves every per-run collection at its bound", async () => {
    const dir = makeDataDir();
    const server = await startServer(dir, { runs: [runConfigFor("mem", { batchSize: 4, worldSize: 4 })] });
    try {
      const run = server.registry.get("mem");
      const stats: ReturnType<typeof run.memoryStats>[] = [];
      const steps = 17_000;
      for (let s = 0; s < steps; s++) {
        for (let r = 0; r < 4; r++) {
          await run.batch(s, r, 0);
          await run.report(s, r, 0, { sample_losses: f32([1 + (s % 7)]) });
        }
        if (s === 999 || s === steps - 1) {
          await run.idle();
          stats.push(run.memoryStats());
        }
      }
      const [early, late] = stats as [ReturnType<typeof run.memoryStats>, ReturnType<typeof run.memoryStats>];
      expect(run.lastAggregated).toBe(steps - 1);
      // Aggregated steps leave nothing pending; caches stay at their fixed sizes.
      expect(late.pending).toBe(0);
      expect(late.inFlight).toBe(0);
      expect(late.planCache).toBeLessThanOrEqual(16);
      expect(late.planCache).toBe(early.planCache);
      expect(late.versions).toBe(early.versions);
      expect(late.evalSteps).toBe(0);
      // Duplicate detection remembers a fixed window of slices (65,536), not all 68,000.
      expect(early.recentHashes).toBe(4000);
      expect(late.recentHashes).toBe(65_536);
    } finally {
      await server.stop();
      removeDir(dir);
    }
  }, 300_000); // the work is fixed (17,000 steps); this is only a guard against a hang: 31 s alone, over 60 s at load 15
});
