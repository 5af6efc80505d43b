/**
 * Index caches through a real server (issue 13, point 6): a data file rewritten with the same
 * size and modification time (two middle lines swapped, so the line offsets move but the
 * first and last 64 KiB are unchanged) is re-indexed with a warning naming it, and the run
 * created on it serves the new lines, not slices at stale offsets; damaged cache entries
 * (a truncated index, garbled index arrays, a garbled index header, a truncated statistics
 * JSON) are rebuilt with warnings naming the data file and the cache file, and the run serves
 * correct samples. The warnings are logged from the worker thread that prepares the run.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { createLogger } from "../../src/util/log.js";
import { makeDataDir, removeDir, startServer, DOMAINS } from "../security/helpers.js";
import type { MixflowServer } from "../../src/server/server.js";

/** ~230 KB per file: the middle lines lie outside the first and last 64 KiB the cache hashes. */
const LINES = 6000;
const BATCH = 128;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function run(id: string): Record<string, unknown> {
  return {
    id,
    batchSize: BATCH,
    worldSize: 1,
    seed: 7,
    strategy: { name: "static" },
    domains: DOMAINS.map((name) => ({ name, train: { format: "jsonl", paths: [`data/${name}.jsonl`] } })),
  };
}

interface Logged {
  msg: string;
  file?: string;
  cache?: string;
  detail?: string;
}

async function up(dir: string): Promise<{ client: MixflowClient; logs: Logged[]; down(): Promise<void> }> {
  const logs: Logged[] = [];
  const server: MixflowServer = await startServer(dir, {}, createLogger("warn", (l) => logs.push(JSON.parse(l) as Logged)));
  const client = new MixflowClient(server.address, { deadlineMs: 30_000 });
  return {
    client,
    logs,
    async down() {
      client.close();
      await server.stop(1000);
    },
  };
}

/** Every served slot's text equals line `sample` of its domain's file as it is now; returns the "domain:sample" keys seen. */
async function expectServedLines(dir: string, c: MixflowClient, runId: string, steps: number): Promise<Set<string>> {
  const lines = DOMAINS.map((d) => fs.readFileSync(path.join(dir, "data", `${d}.jsonl`), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { text: string }).text));
  const seen = new Set<string>();
  for (let step = 0; step < steps; step++) {
    const b = await c.nextBatch(runId, step);
    const data = b.text!.data;
    const offs = b.text!.offsets;
    for (let i = 0; i < b.slots; i++) {
      const text = Buffer.from(data.subarray(Number(offs[i]), Number(offs[i + 1]))).toString("utf8");
      expect(text, `step ${step} slot ${i}`).toBe(lines[b.slotDomains[i]!]![b.slotSamples[i]!]);
      seen.add(`${b.slotDomains[i]}:${b.slotSamples[i]}`);
    }
  }
  return seen;
}

describe("index caches", () => {
  it("a data file rewritten with the same size and mtime is re-indexed with a warning naming it; the new run serves its new lines", async () => {
    const dir = makeDataDir(LINES);
    cleanup.push(() => removeDir(dir));
    const s1 = await up(dir);
    await s1.client.createRun(run("one"));
    expect((await expectServedLines(dir, s1.client, "one", 5)).size).toBeGreaterThan(100);
    await s1.down();

    // Swap two middle lines of different lengths: same size, offsets moved between them.
    const file = path.join(dir, "data", "alpha.jsonl");
    const st = fs.statSync(file);
    // The mtime is put back with nanosecond precision, as `touch -r` or `cp -p` would.
    const ref = path.join(dir, "alpha.mtime-ref");
    execFileSync("touch", ["-r", file, ref]);
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const mid = LINES / 2;
    const at = lines.slice(0, mid).reduce((a, l) => a + l.length + 1, 0);
    expect(at > 64 * 1024 && at < st.size - 64 * 1024).toBe(true);
    const k = [mid, mid + 1, mid + 2, mid + 3].find((j) => lines[j]!.length !== lines[j + 1]!.length)!;
    [lines[k], lines[k + 1]] = [lines[k + 1]!, lines[k]!];
    fs.writeFileSync(file, lines.join("\n"));
    execFileSync("touch", ["-r", ref, file]);
    expect(fs.statSync(file).size).toBe(st.size);
    expect(fs.statSync(file).mtimeMs).toBe(st.mtimeMs);

    const s2 = await up(dir);
    cleanup.push(() => s2.down());
    await s2.client.createRun(run("two"));
    const warned = s2.logs.filter((l) => l.msg === "data file changed under the same size and modification time: re-indexing it");
    expect(warned.map((l) => l.file)).toEqual([file]);
    expect(warned[0]!.detail).toContain(`${file} has the size (${st.size} bytes)`);
    // Served from the new offsets: over a whole epoch of alpha (6000 samples, ~1/3 of 128
    // slots a step), every line equals the file as it is now, the two swapped ones included.
    const seen = await expectServedLines(dir, s2.client, "two", 150);
    expect(seen.has(`0:${k}`) && seen.has(`0:${k + 1}`)).toBe(true);
  });

  it("damaged cache entries (truncated, garbled arrays, garbled header, truncated statistics JSON) are rebuilt with warnings naming the files", async () => {
    const dir = makeDataDir(LINES);
    cleanup.push(() => removeDir(dir));
    const s1 = await up(dir);
    await s1.client.createRun(run("one"));
    await s1.down();

    const cache = path.join(dir, "state", "index");
    const idx = fs.readdirSync(cache).filter((f) => f.endsWith(".idx")).sort();
    expect(idx.length).toBe(DOMAINS.length);
    const damage = [
      (b: Buffer) => b.subarray(0, b.length - 100), // truncated
      (b: Buffer) => {
        const c = Buffer.from(b);
        c[c.length - 20]! ^= 0xff; // garbled index arrays
        return c;
      },
      (b: Buffer) => {
        const c = Buffer.from(b);
        c.write("}{", 12); // garbled header JSON
        return c;
      },
    ];
    idx.forEach((f, i) => fs.writeFileSync(path.join(cache, f), damage[i]!(fs.readFileSync(path.join(cache, f)))));
    const stats = fs.readdirSync(cache).filter((f) => /^stats\d+-/.test(f));
    expect(stats.length).toBeGreaterThan(0);
    const statsFile = path.join(cache, stats[0]!);
    fs.writeFileSync(statsFile, fs.readFileSync(statsFile, "utf8").slice(0, 5));

    const s2 = await up(dir);
    cleanup.push(() => s2.down());
    await s2.client.createRun(run("two"));
    const idxWarnings = s2.logs.filter((l) => l.msg === "damaged index cache entry: re-indexing the file");
    expect(idxWarnings.map((l) => l.file).sort()).toEqual(DOMAINS.map((d) => path.join(dir, "data", `${d}.jsonl`)).sort());
    expect(idxWarnings.map((l) => path.basename(l.cache!)).sort()).toEqual(idx);
    const whys = idxWarnings.map((l) => l.detail!);
    expect(whys.some((w) => w.includes("is truncated or padded"))).toBe(true);
    expect(whys.some((w) => w.includes("is garbled (its arrays do not match their checksum)"))).toBe(true);
    expect(whys.some((w) => w.includes("its header is not valid JSON"))).toBe(true);
    expect(s2.logs.filter((l) => l.msg === "damaged cache entry: recomputing it").map((l) => l.cache)).toEqual([statsFile]);
    // No error logged, and the rebuilt run serves correct samples.
    expect(s2.logs.filter((l) => (l as { level?: string }).level === "error")).toEqual([]);
    expect((await expectServedLines(dir, s2.client, "two", 20)).size).toBeGreaterThan(400);
    // Rebuilt entries load silently the next time.
    await s2.client.createRun(run("three"));
    expect(s2.logs.filter((l) => l.msg.startsWith("damaged"))).toHaveLength(DOMAINS.length + 1);
  });
});
