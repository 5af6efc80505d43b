/**
 * The serving frontier across restarts and against far-ahead requests, through a real
 * `mixflow serve` child process (restarts) and an in-process server (requests):
 * - a clean SIGTERM drain journals the exact frontier, so after the restart the next
 *   version takes effect right after the served steps, not at the lease end;
 * - after SIGKILL the frontier jumps at most one lease chunk (LEASE_CHUNK) past the served steps;
 * - a step more than maxLookahead past the frontier is refused with OUT_OF_RANGE (adaptive
 *   strategies) and changes nothing; a static run serves it;
 * - unpaced streams: prefetch above the limit is refused, and a reporting rank's stream is
 *   held near its last report instead of running ~1,000 steps ahead.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { LEASE_CHUNK } from "../../src/runs/run.js";
import { makeDataDir, removeDir, runConfigFor, startServer } from "../security/helpers.js";
import { spawnServer, type ChildServer } from "../load/child-server.js";
import type { MixflowServer } from "../../src/server/server.js";

const RANKS = 2;
const SLOTS = 4;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function serverFile(dir: string, runs: Record<string, unknown>[]): string {
  const file = join(dir, "server.json");
  writeFileSync(file, JSON.stringify({ dataDir: "state", logLevel: "warn", metrics: { enabled: false }, journal: { durability: "fsync" }, runs }));
  return file;
}

async function serveSteps(client: MixflowClient, runId: string, from: number, to: number): Promise<void> {
  for (let s = from; s < to; s++) for (let r = 0; r < RANKS; r++) await client.nextBatch(runId, s, r);
}

async function reportSteps(client: MixflowClient, runId: string, from: number, to: number): Promise<void> {
  for (let s = from; s < to; s++) {
    for (let r = 0; r < RANKS; r++) await client.reportSignals({ runId, step: s, rank: r, sampleLosses: new Float32Array(SLOTS).fill(1 + (s % 3) / 4 + r / 8) });
  }
}

async function withChild(file: string, f: (c: MixflowClient, s: ChildServer) => Promise<void>): Promise<void> {
  const s = await spawnServer(file);
  const c = new MixflowClient(s.address, { deadlineMs: 30_000 });
  try {
    await f(c, s);
  } finally {
    c.close();
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill("SIGKILL");
      await s.exited;
    }
  }
}

describe("frontier across restarts", () => {
  it("a clean SIGTERM drain keeps the frontier at the served steps; the next version takes effect right after them", async () => {
    const dir = makeDataDir(200);
    cleanup.push(() => removeDir(dir));
    const file = serverFile(dir, [{ ...runConfigFor("drain", { batchSize: RANKS * SLOTS, worldSize: RANKS }), strategy: { name: "exp3", params: { warmupSteps: 0 } } }]);
    await withChild(file, async (c, s) => {
      await serveSteps(c, "drain", 0, 10);
      expect((await c.getRun("drain")).frontier).toBe(9);
      s.proc.kill("SIGTERM");
      expect(await s.exited).toBe(0);
    });
    await withChild(file, async (c) => {
      expect((await c.getRun("drain")).frontier).toBe(9);
      await reportSteps(c, "drain", 0, 10);
      // Aggregation runs after the acks: wait until the version of step 9 is published.
      const lastVersion = async () => (await c.getWeights("drain")).versions.at(-1)!;
      let last = await lastVersion();
      for (let i = 0; i < 600 && last.committedAtStep < 9; i++) {
        await new Promise((r) => setTimeout(r, 50));
        last = await lastVersion();
      }
      expect(last.committedAtStep).toBe(9);
      expect(last.fromStep).toBe(10);
    });
  }, 120_000);

  it(`after SIGKILL the frontier moves at most one lease chunk (${LEASE_CHUNK} steps) past the served steps`, async () => {
    const dir = makeDataDir(200);
    cleanup.push(() => removeDir(dir));
    const file = serverFile(dir, [runConfigFor("crash", { batchSize: RANKS * SLOTS, worldSize: RANKS, strategy: "exp3" })]);
    await withChild(file, async (c, s) => {
      await serveSteps(c, "crash", 0, 100);
      s.proc.kill("SIGKILL");
      await s.exited;
    });
    await withChild(file, async (c) => {
      const f = (await c.getRun("crash")).frontier;
      expect(f).toBeGreaterThanOrEqual(99);
      expect(f).toBeLessThanOrEqual(99 + LEASE_CHUNK);
    });
  }, 120_000);
});

describe("requests far past the frontier", () => {
  async function inProcess(runs: Record<string, unknown>[]): Promise<{ server: MixflowServer; client: MixflowClient }> {
    const dir = makeDataDir(200);
    const server = await startServer(dir, { runs });
    const client = new MixflowClient(server.address, { deadlineMs: 10_000 });
    cleanup.push(() => removeDir(dir), () => server.stop(1000), () => client.close());
    return { server, client };
  }

  it("a step more than maxLookahead past the frontier is refused with OUT_OF_RANGE and moves nothing; a static run serves it", async () => {
    const { client } = await inProcess([
      { ...runConfigFor("adaptive", { batchSize: 8, worldSize: 2, strategy: "exp3" }), maxLookahead: 100 },
      runConfigFor("fixed", { batchSize: 8, worldSize: 2, strategy: "static" }),
    ]);
    await client.nextBatch("adaptive", 0, 0);
    await client.nextBatch("adaptive", 100, 0); // exactly maxLookahead past step 0
    const far = await client.nextBatch("adaptive", 1e12, 0).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    expect(far?.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(far?.details).toContain("maxLookahead (100)");
    expect(far?.details).toContain("serving frontier (step 100)");
    expect((await client.getRun("adaptive")).frontier).toBe(100);
    const b = await client.nextBatch("fixed", 1e12, 1);
    expect(b.step).toBe(1e12);
  });

  it("prefetch above the limit is refused; an unpaced stream of a reporting rank stays near its last report", async () => {
    const { client } = await inProcess([runConfigFor("u", { batchSize: 2, worldSize: 1, strategy: "exp3" })]);
    const big = client.streamBatchesRaw({ runId: "u", fromStep: 0, prefetch: 1000 });
    const err = await new Promise<grpc.ServiceError>((res) => big.on("error", res));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("prefetch 1000 is above the limit of 64");

    await client.nextBatch("u", 0, 0);
    await client.reportSignals({ runId: "u", step: 0, sampleLosses: new Float32Array(2).fill(1) });
    const stream = client.streamBatchesRaw({ runId: "u", fromStep: 1, prefetch: 4 });
    await new Promise<void>((res) => stream.once("data", () => res()));
    stream.pause(); // a trainer busy with its first batch
    // Wait until the server stops assembling (the frontier holds still), then read it.
    let f = -1;
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const now = (await client.getRun("u")).frontier;
      if (now === f) break;
      f = now;
    }
    stream.on("error", () => undefined); // the CANCELLED status of our own cancel
    stream.cancel();
    expect(f).toBeGreaterThan(4);
    expect(f).toBeLessThanOrEqual(256 + 4);
  });
});
