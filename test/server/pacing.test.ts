import { afterEach, describe, expect, it } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import type { Batch } from "../../src/client/index.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stream pacing by reports", () => {
  it("a paced stream stays `prefetch` steps past the rank's last report; an unpaced one runs ahead", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir, { id: "paced", worldSize: 1 }), runConfigFor(dir, { id: "free", worldSize: 1 })]);
    const c = ts.client;
    const run = ts.server.registry.get("paced");

    const got: Batch[] = [];
    const it = c.batches({ runId: "paced", prefetch: 2, paced: true })[Symbol.asyncIterator]();
    got.push((await it.next()).value as Batch, (await it.next()).value as Batch);
    await sleep(300);
    // Nothing reported yet: steps 0 and 1 are all the server may assemble.
    expect(run.frontier).toBe(1);
    await c.reportSignals({ runId: "paced", step: 0, sampleLosses: new Float32Array(16).fill(1) });
    await sleep(200);
    expect(run.frontier).toBe(2);
    await c.reportSignals({ runId: "paced", step: 1, sampleLosses: new Float32Array(16).fill(1) });
    got.push((await it.next()).value as Batch);
    expect(got.map((b) => b.step)).toEqual([0, 1, 2]);
    await it.return?.(undefined);

    const free = c.batches({ runId: "free", prefetch: 2 })[Symbol.asyncIterator]();
    await free.next();
    await sleep(300);
    expect(ts.server.registry.get("free").frontier).toBeGreaterThan(10);
    await free.return?.(undefined);
  });

  it("a paced rank whose reports stop is released after the aggregation timeout", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir, { id: "slow", worldSize: 1, aggregationTimeoutMs: 400 })]);
    const run = ts.server.registry.get("slow");
    const it = ts.client.batches({ runId: "slow", prefetch: 2, paced: true })[Symbol.asyncIterator]();
    await it.next();
    await sleep(150);
    expect(run.frontier).toBe(1);
    await sleep(600);
    expect(run.frontier).toBeGreaterThan(3);
    await it.return?.(undefined);
  });
});
