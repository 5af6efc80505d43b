import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { readHistory } from "../../src/replay/history.js";
import { exportComposition, weightsTimelineCsv } from "../../src/replay/export.js";
import { verifyDigests } from "../../src/replay/verify.js";
import { difficultyOrders } from "../../src/replay/difficulty.js";
import { simulate } from "../../src/replay/simulate.js";
import { averageWeights, replayServeConfig, transferConfig } from "../../src/replay/configs.js";
import type { Batch } from "../../src/client/index.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

const STEPS = 40;

/** Drive a two-rank adaptive run; return what the trainers received. */
async function recordRun(dir: string): Promise<Map<string, Batch>> {
  const cfg = runConfigFor(dir, { strategy: { name: "exp3", params: { warmupSteps: 0 } } });
  ts = await startServer(dir, [cfg]);
  const got = new Map<string, Batch>();
  await Promise.all(
    [0, 1].map(async (rank) => {
      const rep = ts!.client.reporter({ runId: "r1", rank, worldSize: 2 });
      for await (const b of ts!.client.batches({ runId: "r1", rank, worldSize: 2, maxBatches: STEPS, prefetch: 2 })) {
        got.set(`${b.step}:${rank}`, b);
        const losses = Float32Array.from(b.slotDomains, (d, i) => 1 + d * 0.7 + ((b.step * 7 + i) % 5) * 0.01);
        rep.report(b.step, { sampleLosses: losses });
        await rep.flush();
      }
    }),
  );
  await ts.server.registry.get("r1").idle();
  await ts.stop();
  ts = null;
  return got;
}

describe("offline replay from the journal", () => {
  it("export equals what the clients received; verify finds every digest; simulate reproduces the weights", async () => {
    const dir = tmpDir();
    const got = await recordRun(dir);
    const h = await readHistory(path.join(dir, "state"), "r1");
    expect(h.versions.length).toBeGreaterThan(3); // exp3 adapted during the run
    expect(h.aggregated.length).toBeGreaterThanOrEqual(STEPS - 2);

    const out = path.join(dir, "composition.jsonl");
    const rows = await exportComposition(h, out, { format: "jsonl", from: 0, to: STEPS - 1 });
    expect(rows).toBe(STEPS * 16);
    const names = h.config.domains.map((d) => d.name);
    const lines = fs.readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { step: number; rank: number; slot: number; domain: string; sample: number });
    for (const l of lines) {
      const b = got.get(`${l.step}:${l.rank}`)!;
      const i = l.slot - b.slotOffset;
      expect([names[b.slotDomains[i]!], b.slotSamples[i]]).toEqual([l.domain, l.sample]);
    }

    const csv = weightsTimelineCsv(h).trim().split("\n");
    expect(csv[0]).toBe(`from_step,version,committed_at_step,reason,${names.join(",")}`);
    expect(csv.length).toBe(h.versions.length + 1);

    const v = verifyDigests(h);
    expect(v.checked).toBe(h.aggregated.length);
    expect(v.mismatches).toEqual([]);

    const sim = simulate(h, "exp3", { warmupSteps: 0 });
    const recorded = h.versions.filter((x) => x.reason !== "planned").map((x) => ({ step: x.committedAtStep, weights: x.weights }));
    expect(sim).toEqual(recorded);

    const other = simulate(h, "thompson", {});
    expect(other.length).toBeGreaterThan(1);
    expect(other.map((x) => x.weights)).not.toEqual(recorded.map((x) => x.weights));
  });

  it("replay serve re-serves the recorded batches bit for bit; transfer hands over the schedule or its average", async () => {
    const dir = tmpDir();
    const got = await recordRun(dir);
    const h = await readHistory(path.join(dir, "state"), "r1");
    ts = await startServer(dir);
    await ts.client.createRun(replayServeConfig(h, "again"));
    for (let step = 0; step < STEPS; step++) {
      for (const rank of [0, 1]) {
        const b = await ts.client.nextBatch("again", step, rank, 2);
        const a = got.get(`${step}:${rank}`)!;
        expect(Buffer.compare(b.text!.data, a.text!.data)).toBe(0);
        expect(b.digest).toBe(a.digest);
      }
    }
    // Signals to the replay run are recorded but change nothing.
    const b0 = await ts.client.nextBatch("again", 0, 0, 2);
    await ts.client.reportSignals({ runId: "again", step: 0, rank: 0, worldSize: 2, sampleLosses: new Float32Array(b0.slots).fill(9) });
    expect((await ts.client.getWeights("again")).versions.length).toBe(h.versions.length);

    const avg = averageWeights(h);
    expect(avg.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const t = transferConfig(h, { newId: "target", mode: "average" });
    await ts.client.createRun(t);
    const tw = (await ts.client.getWeights("target")).versions[0]!.weights;
    tw.forEach((w, i) => expect(w).toBeCloseTo(avg[i]!, 12));

    const sched = transferConfig(h, { newId: "target2", mode: "schedule", stepScale: 10 });
    await ts.client.createRun(sched);
    const sv = (await ts.client.getWeights("target2")).versions;
    expect(sv.map((x) => x.fromStep)).toEqual([...new Set(h.versions.map((x) => Math.round(x.fromStep * 10)))]);
  });
});

describe("replay of a curriculum run (competence: the planner serves in difficulty order)", () => {
  it("verify and export rebuild the difficulty order from the data; a changed score is caught at its step", async () => {
    const dir = tmpDir();
    const names = ["easy", "hard"];
    for (const [di, name] of names.entries()) {
      const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ text: `${name} doc ${i}`, d: ((i * 37 + di * 11) % 120) / 10 }));
      fs.writeFileSync(path.join(dir, `${name}.jsonl`), lines.join("\n") + "\n");
    }
    const cfg = {
      id: "cur",
      batchSize: 8,
      worldSize: 1,
      seed: 5,
      maxSteps: 30,
      strategy: { name: "competence", params: {} },
      domains: names.map((name) => ({ name, train: { format: "jsonl", paths: [`${name}.jsonl`], difficultyField: "d" } })),
    };
    ts = await startServer(dir, [cfg]);
    const got = new Map<number, Batch>();
    const rep = ts.client.reporter({ runId: "cur", rank: 0, worldSize: 1 });
    for await (const b of ts.client.batches({ runId: "cur", maxBatches: 30, prefetch: 2 })) {
      got.set(b.step, b);
      rep.report(b.step, { sampleLosses: Float32Array.from(b.slotDomains, (d) => 1 + d) });
      await rep.flush();
    }
    await ts.server.registry.get("cur").idle();
    await ts.stop();
    ts = null;

    const h = await readHistory(path.join(dir, "state"), "cur");
    expect(h.aggregated.length).toBeGreaterThanOrEqual(28);
    const orders = difficultyOrders(h, dir);
    expect(orders).toBeDefined();
    // Without the order (the old behaviour) the replay is wrong; with it, every step matches.
    expect(verifyDigests(h).mismatches.length).toBeGreaterThan(0);
    const ok = verifyDigests(h, orders);
    expect(ok.checked).toBe(h.aggregated.filter((a) => a.digest).length);
    expect(ok.mismatches).toEqual([]);
    // Export equals what the trainer received.
    const out = path.join(dir, "cur.jsonl");
    expect(await exportComposition(h, out, { format: "jsonl", from: 0, to: 29, difficultyOrders: orders })).toBe(30 * 8);
    for (const l of fs.readFileSync(out, "utf8").trim().split("\n").map((x) => JSON.parse(x) as { step: number; slot: number; domain: string; sample: number })) {
      const b = got.get(l.step)!;
      expect([names[b.slotDomains[l.slot]!], b.slotSamples[l.slot]]).toEqual([l.domain, l.sample]);
    }
    // One difficulty score changed: the order changes and verify names the first step that differs.
    const file = path.join(dir, "hard.jsonl");
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    const easiest = lines.findIndex((l) => (JSON.parse(l) as { d: number }).d === 0);
    lines[easiest] = JSON.stringify({ ...(JSON.parse(lines[easiest]!) as object), d: 99 });
    fs.writeFileSync(file, lines.join("\n") + "\n");
    const bad = verifyDigests(h, difficultyOrders(h, dir));
    expect(bad.mismatches.length).toBeGreaterThan(0);
    const first = bad.mismatches[0]!.step;
    expect([...got.get(first)!.slotDomains].map((d) => names[d])).toContain("hard");
  });
});
