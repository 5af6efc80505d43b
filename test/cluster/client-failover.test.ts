/**
 * The TS client across replicas: given several addresses, unary calls move on after
 * UNAVAILABLE and the batch iterator resumes on the next server with the same batches.
 * Two single-process servers serve the same configured run (same config and seed), so
 * they serve identical batches, as a cluster's replicas do (the cluster itself is tested
 * in failover.test.ts).
 */
import { describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import type { Batch } from "../../src/client/types.js";
import { runConfigFor, startServer, tmpDir } from "../helpers/fixtures.js";
import { freePorts } from "./etcd-harness.js";

const same = (x: Batch): string => JSON.stringify([x.step, x.rank, x.version, x.digest, Array.from(x.slotSamples)]);

describe("client failover", () => {
  it("unary calls skip an unreachable address and the iterator resumes on the other server", async () => {
    const dir = tmpDir("mixflow-client-fo-");
    const run = runConfigFor(dir, { id: "twin", maxSteps: 60 });
    const a = await startServer(dir, [run], { dataDir: `${dir}/state-a` });
    const b = await startServer(dir, [run], { dataDir: `${dir}/state-b` });
    const [dead] = await freePorts(1);
    const c = new MixflowClient([`127.0.0.1:${dead}`, a.server.address, b.server.address], { deadlineMs: 10_000 });
    try {
      const first = await c.nextBatch("twin", 0, 1, 2);
      expect(c.address).toBe(a.server.address);
      await a.stop(); // the next calls find it UNAVAILABLE
      const got: Batch[] = [];
      const it = c.batches({ runId: "twin", rank: 1, worldSize: 2, prefetch: 2, backoffMs: 20 });
      for await (const x of it) got.push(x);
      expect(c.address).toBe(b.server.address);
      expect(got.map((x) => x.step)).toEqual(Array.from({ length: 60 }, (_, i) => i));
      expect(same(got[0]!)).toBe(same(first));
      for (const x of got) expect(same(x)).toBe(same(await b.client.nextBatch("twin", x.step, 1, 2)));
    } finally {
      c.close();
      await b.stop();
    }
  }, 60_000);
});
