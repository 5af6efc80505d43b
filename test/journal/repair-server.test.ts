/**
 * Journal repair through a real server: one flipped byte in a signals record in the middle
 * of a segment; the server refuses to open (DATA_LOSS), `repairJournal` drops exactly that
 * record, and after the restart every other record is there and the served batches and
 * weights versions are unchanged.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { Journal, repairJournal } from "../../src/journal/index.js";
import { EventType } from "../../src/runs/events.js";
import { makeDataDir, removeDir, startServer } from "../security/helpers.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const RUN = {
  id: "j",
  batchSize: 8,
  worldSize: 2,
  seed: 9,
  aggregationTimeoutMs: 60_000,
  strategy: { name: "exp3", params: { warmupSteps: 0 } },
  domains: ["alpha", "beta", "gamma"].map((name) => ({ name, train: { format: "jsonl", paths: [`data/${name}.jsonl`] } })),
};
const STEPS = 40;

async function up(dir: string) {
  const server = await startServer(dir, { runs: [RUN], journal: { durability: "fsync", checkpointEvery: 1_000_000 } });
  const client = new MixflowClient(server.address, { deadlineMs: 10_000 });
  return { server, client, down: async () => (client.close(), await server.stop(1000)) };
}

async function records(jdir: string): Promise<{ type: number; payload: string; segment: string; offset: number }[]> {
  const out = [];
  for await (const r of Journal.scan(jdir, { from: "all" })) out.push({ type: r.type, payload: r.payload.toString("utf8"), segment: r.segment, offset: r.offset });
  return out;
}

describe("journal repair through a server", () => {
  it("one flipped byte mid-segment: repair drops only that record; after restart every other record, batch and version is kept", async () => {
    const dir = makeDataDir(200);
    cleanup.push(() => removeDir(dir));
    let s = await up(dir);
    const digests: string[] = [];
    for (let step = 0; step < STEPS; step++) {
      for (const rank of [0, 1]) {
        const b = await s.client.nextBatch("j", step, rank);
        digests.push(b.digest);
        await s.client.reportSignals({ runId: "j", step, rank, sampleLosses: Float32Array.from(b.slotDomains, (d, i) => 1 + d * 0.5 + ((step + i) % 3) * 0.1) });
      }
    }
    await s.server.registry.get("j").idle();
    const versions = (await s.client.getWeights("j")).versions;
    expect(versions.length).toBeGreaterThan(20);
    await s.down();

    const jdir = path.join(dir, "state", "journal");
    const before = await records(jdir);
    const signals = before.map((r, i) => ({ ...r, i })).filter((r) => r.type === EventType.Signals);
    const victim = signals[Math.floor(signals.length / 2)]!;
    const file = path.join(jdir, victim.segment);
    const bytes = fs.readFileSync(file);
    bytes[victim.offset + 9 + 5]! ^= 0x10; // one byte inside the payload
    fs.writeFileSync(file, bytes);
    await expect(startServer(dir, { runs: [RUN], journal: { durability: "fsync" } })).rejects.toThrow(/journal corrupt/);

    const rep = await repairJournal(jdir);
    expect(rep.dropped).toHaveLength(1);
    expect(rep.dropped[0]).toMatchObject({ segment: victim.segment, offset: victim.offset, records: 1 });
    expect(rep.truncated).toEqual([]);
    const after = await records(jdir);
    expect(after.map((r) => r.payload)).toEqual(before.filter((_, i) => i !== victim.i).map((r) => r.payload));

    s = await up(dir);
    const again: string[] = [];
    for (let step = 0; step < STEPS; step++) for (const rank of [0, 1]) again.push((await s.client.nextBatch("j", step, rank)).digest);
    expect(again).toEqual(digests);
    expect((await s.client.getWeights("j")).versions).toEqual(versions);
    await s.down();
  });
});
