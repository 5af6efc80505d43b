import { afterEach, describe, expect, it } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import type { Batch } from "../../src/client/index.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

function texts(b: Batch): string[] {
  return Array.from({ length: b.slots }, (_, i) => b.text!.at(i));
}

describe("serving batches over gRPC", () => {
  it("two ranks streaming the same run get disjoint slices that together equal the global batch", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir)]);
    const c = ts.client;
    const take = async (rank: number): Promise<Batch[]> => {
      const out: Batch[] = [];
      for await (const b of c.batches({ runId: "r1", rank, worldSize: 2, fromStep: 0, maxBatches: 5 })) out.push(b);
      return out;
    };
    const [r0, r1] = await Promise.all([take(0), take(1)]);
    expect(r0.map((b) => b.step)).toEqual([0, 1, 2, 3, 4]);
    for (let s = 0; s < 5; s++) {
      const whole = await c.nextBatch("r1", s, 0, 1);
      expect(whole.slots).toBe(16);
      expect(r0[s]!.slotOffset).toBe(0);
      expect(r1[s]!.slotOffset).toBe(8);
      const joined = [...Array.from(r0[s]!.slotDomains), ...Array.from(r1[s]!.slotDomains)];
      expect(joined).toEqual(Array.from(whole.slotDomains));
      expect([...texts(r0[s]!), ...texts(r1[s]!)]).toEqual(texts(whole));
      // disjoint: no (domain, sample) pair in both slices
      const key = (b: Batch, i: number): string => `${b.slotDomains[i]}:${b.slotSamples[i]}`;
      const k0 = new Set(Array.from({ length: 8 }, (_, i) => key(r0[s]!, i)));
      for (let i = 0; i < 8; i++) expect(k0.has(key(r1[s]!, i))).toBe(false);
      expect(whole.digest).toBe(r0[s]!.digest);
    }
  });

  it("asking for the same (step, rank) twice gives identical bytes, in any order", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir)]);
    const late = await ts.client.nextBatch("r1", 9, 1);
    const early = await ts.client.nextBatch("r1", 3, 0);
    const late2 = await ts.client.nextBatch("r1", 9, 1);
    expect(Buffer.compare(late.text!.data, late2.text!.data)).toBe(0);
    expect(Array.from(late.slotSamples)).toEqual(Array.from(late2.slotSamples));
    expect(late.digest).toBe(late2.digest);
    expect(early.step).toBe(3);
  });

  it("serves every domain's samples without repeats inside an epoch", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir, { worldSize: 1, batchSize: 15 })]);
    const seen = new Map<number, number[]>();
    // 3 domains × 50 samples, uniform: 10 steps of 15 = 150 draws = one epoch each.
    for await (const b of ts.client.batches({ runId: "r1", fromStep: 0, maxBatches: 10 })) {
      for (let i = 0; i < b.slots; i++) {
        const d = b.slotDomains[i]!;
        if (!seen.has(d)) seen.set(d, []);
        seen.get(d)!.push(b.slotSamples[i]!);
      }
    }
    for (const [, xs] of seen) {
      expect(xs.length).toBe(50);
      expect(new Set(xs).size).toBe(50);
    }
  });

  it("a different seed gives a different sequence; the same config gives the same one after a restart", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir), { ...runConfigFor(dir), id: "r2", seed: 12 }]);
    const a = await ts.client.nextBatch("r1", 4, 0);
    const b = await ts.client.nextBatch("r2", 4, 0);
    expect(a.digest).not.toBe(b.digest);
    await ts.stop();
    ts = await startServer(dir, [runConfigFor(dir), { ...runConfigFor(dir), id: "r2", seed: 12 }]);
    const a2 = await ts.client.nextBatch("r1", 4, 0);
    expect(Buffer.compare(a.text!.data, a2.text!.data)).toBe(0);
    expect(a2.digest).toBe(a.digest);
  });
});
