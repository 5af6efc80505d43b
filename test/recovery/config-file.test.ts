/**
 * Runs declared in the server's config file and recovered from the journal: a restart with
 * the same run is fine, a changed run is refused with a message saying what to do, and a
 * journal written before a config field existed still matches the file (the field's
 * default is filled in to compare; the run keeps behaving as it was created).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Journal } from "../../src/journal/index.js";
import { decodeEvent, encodeEvent } from "../../src/history/events.js";
import { runConfigFor, startServer, tmpDir } from "../helpers/fixtures.js";

describe("config-file runs across restarts", () => {
  const dir = tmpDir("mixflow-cfgrun-");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = runConfigFor(dir, { strategy: { name: "mixflow" }, worldSize: 1 });
  const journalDir = path.join(dir, "state", "journal");

  it("same run: recovered; changed run: refused, naming the run and the fix", async () => {
    const s1 = await startServer(dir, [run]);
    const first = await s1.client.nextBatch("r1", 0, 0, 1);
    await s1.stop();
    const s2 = await startServer(dir, [run]);
    expect((await s2.client.nextBatch("r1", 0, 0, 1)).digest).toBe(first.digest);
    await s2.stop();
    await expect(startServer(dir, [{ ...run, batchSize: 32 }])).rejects.toThrow(/run "r1" in the config file differs from the journaled run of that id; give the changed run a new id/);
  });

  it("a journal from before `holdout` existed matches the file's run, which keeps its journaled config", async () => {
    // Rewrite the journal as an older mixflow would have written it: no `holdout` on domains.
    const { journal, records } = await Journal.open({ dir: journalDir, durability: "none" });
    const events = records.map((r) => decodeEvent(r.type, r.payload));
    await journal.close();
    let stripped = 0;
    for (const e of events) {
      const cfg = (e.body as { config?: { domains: { holdout?: string }[] } }).config;
      for (const d of cfg?.domains ?? []) {
        delete d.holdout;
        stripped++;
      }
    }
    expect(stripped).toBeGreaterThan(0);
    fs.rmSync(journalDir, { recursive: true });
    const { journal: fresh } = await Journal.open({ dir: journalDir, durability: "none" });
    await fresh.appendMany(events.map(encodeEvent));
    await fresh.close();

    const s = await startServer(dir, [run]);
    try {
      const recovered = s.server.registry.get("r1");
      expect(recovered.config.domains.map((d) => d.holdout)).toEqual([undefined, undefined, undefined]);
    } finally {
      await s.stop();
    }
    // A real change is still refused against the old journal.
    await expect(startServer(dir, [{ ...run, seed: 12 }])).rejects.toThrow(/differs from the journaled run/);
  });
});
