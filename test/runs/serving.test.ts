/**
 * The serving room (src/runs/serving.ts) alone, over real domains and a real planner: a
 * slice is the same bytes however often it is asked, its content digest is recorded only
 * when the encoder writes its payload and is handed to the step's Aggregated record once,
 * and a new version makes the cached plans stale. No Run, no server.
 */
import { describe, expect, it } from "vitest";
import { runConfig } from "../../src/config/schema.js";
import { loadDomains } from "../../src/runs/domains.js";
import { digestHex } from "../../src/runs/plans.js";
import { Serving } from "../../src/runs/serving.js";
import { BatchPlanner } from "../../src/sampling/index.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";

function serving(): { s: Serving; planner: BatchPlanner; close(): void } {
  const dir = tmpDir("mixflow-serving-");
  const config = runConfig.parse(runConfigFor(dir));
  const domains = loadDomains(config, { cacheDir: `${dir}/index`, baseDir: dir });
  const planner = new BatchPlanner(config.seed, config.batchSize, domains.map((d) => d.plan));
  planner.addVersion({ version: 1, fromStep: 0, weights: [0.5, 0.25, 0.25], competence: null });
  return { s: new Serving(config.id, planner, domains.map((d) => d.train)), planner, close: () => domains.forEach((d) => d.train.close()) };
}

const geometry = (step: number, rank: number) => ({ step, rank, offset: rank * 8, slots: 8, worldSize: 2 });

function bytes(b: ReturnType<Serving["batch"]>): Buffer {
  const out = Buffer.alloc(b.slice.payload.data.length);
  b.slice.payload.data.write(out, 0);
  return out;
}

describe("Serving", () => {
  it("serves the same slice bytes every time, with the planned batch's digest", () => {
    const { s, close } = serving();
    const a = s.batch(geometry(3, 1), null);
    const b = s.batch(geometry(3, 1), null);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(Array.from(a.slice.samples)).toEqual(Array.from(b.slice.samples));
    expect(a.digest).toBe(digestHex(s.globalBatch(3)));
    expect({ step: a.step, rank: a.rank, offset: a.offset, slots: a.slots, version: a.version, eval: a.eval }).toEqual({ step: 3, rank: 1, offset: 8, slots: 8, version: 1, eval: null });
    close();
  });

  it("records a step's content digest when the payload is written, and hands it over once", () => {
    const { s, close } = serving();
    const b0 = s.batch(geometry(5, 0), null);
    expect(s.stepRecord(5).content).toBeUndefined(); // served, not yet written
    bytes(b0);
    bytes(s.batch(geometry(5, 1), null));
    const rec = s.stepRecord(5);
    expect(rec.digest).toBe(digestHex(s.globalBatch(5)));
    expect(rec.content?.ranges).toEqual([0, 8, 8, 8]);
    expect(rec.content?.domains.length).toBe(3);
    expect(s.stepRecord(5).content).toBeUndefined(); // taken
    close();
  });

  it("a new version clears the cached plans", () => {
    const { s, planner, close } = serving();
    const before = s.globalBatch(10);
    expect(s.planCacheSize).toBe(1);
    planner.addVersion({ version: 2, fromStep: 10, weights: [0, 0, 1], competence: null });
    s.versionApplied();
    expect(s.planCacheSize).toBe(0);
    const after = s.globalBatch(10);
    expect(after.version).toBe(2);
    expect(Array.from(after.domains).every((d) => d === 2)).toBe(true);
    expect(before.version).toBe(1);
    close();
  });
});
