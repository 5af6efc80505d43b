/**
 * Content digests (issue 12): the server journals a digest of each served step's payload
 * bytes per domain, and `mixflow replay verify --data` re-reads the data and compares.
 * Through a real server and the real CLI entry: unchanged data verifies; ONE byte changed
 * in a served sample of a large file, where the sampled data fingerprint cannot see it (same
 * size, same mtime, outside every sampled block), fails naming exactly the steps that served
 * that sample and its domain; a one-byte change in a small file is named the same way; in a
 * curriculum run one changed difficulty score is named by step and domain (the samples
 * served under the new order differ in that domain only); a journal written before content
 * digests says it has none and still verifies.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { replayCommand } from "../../src/cli/replay.js";
import { readHistory } from "../../src/replay/history.js";
import { checkDataFingerprint } from "../../src/sources/data-fingerprint.js";

let ts: TestServer | null = null;
const dirs: string[] = [];
afterEach(async () => {
  await ts?.stop();
  ts = null;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const STEPS = 24;
const BIG_LINES = 6000;
const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/journal-v1");

/** Same block layout as src/sources/data-fingerprint.ts (64 blocks of 16 KiB past 1 MiB). */
function sampledBlocks(size: number): [number, number][] {
  const span = size - (16 << 10);
  return Array.from({ length: 64 }, (_, b) => {
    const at = Math.floor((span * b) / 63);
    return [at, at + (16 << 10)];
  });
}

async function verify(dir: string, ...flags: string[]): Promise<{ out: string; code: number }> {
  const write = process.stdout.write.bind(process.stdout);
  let out = "";
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await replayCommand(["verify", "--journal", path.join(dir, "state"), "--run", "c", "--base-dir", dir, ...flags]);
  } finally {
    process.stdout.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, code };
}

/** Rewrite one byte of `file` at `at` (same size: an "x" of a text field becomes `to`), restoring its mtime. */
function flipByte(file: string, at: number, to = 0x79): void {
  const st = fs.statSync(file);
  const buf = fs.readFileSync(file);
  expect(buf[at]).toBe(to === 0x79 ? 0x78 : 0x79);
  buf[at] = to;
  fs.writeFileSync(file, buf);
  fs.utimesSync(file, st.atime, st.mtime);
}

describe("replay verify --data: content digests of the served payloads", () => {
  it("passes on unchanged data and names the steps and the domain of one changed byte", async () => {
    const dir = tmpDir();
    dirs.push(dir);
    // "big": > 1 MiB, so its fingerprint hashes sampled blocks only; "small": hashed whole.
    const bigOffsets: number[] = [];
    let at = 0;
    const big = Array.from({ length: BIG_LINES }, (_, i) => {
      const line = JSON.stringify({ text: `big ${i} ${"x".repeat(400 + (i % 50))}` });
      bigOffsets.push(at);
      at += line.length + 1;
      return line;
    });
    fs.writeFileSync(path.join(dir, "big.jsonl"), big.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "small.jsonl"), Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: `small ${i} xx${"y".repeat(i % 9)}` })).join("\n") + "\n");
    const cfg = {
      id: "c",
      batchSize: 16,
      worldSize: 2,
      seed: 3,
      maxSteps: 1000,
      strategy: { name: "exp3", params: { warmupSteps: 0 } },
      domains: ["big", "small"].map((name) => ({ name, train: { format: "jsonl", paths: [`${name}.jsonl`] } })),
    };
    ts = await startServer(dir, [cfg]);
    const served = new Map<number, { domain: number; sample: number }[]>();
    await Promise.all(
      [0, 1].map(async (rank) => {
        const rep = ts!.client.reporter({ runId: "c", rank, worldSize: 2 });
        for await (const b of ts!.client.batches({ runId: "c", rank, worldSize: 2, maxBatches: STEPS, prefetch: 2 })) {
          const slots = served.get(b.step) ?? [];
          b.slotDomains.forEach((d, i) => slots.push({ domain: d, sample: b.slotSamples[i]! }));
          served.set(b.step, slots);
          rep.report(b.step, { sampleLosses: Float32Array.from(b.slotDomains, (d) => 1 + d) });
          await rep.flush();
        }
      }),
    );
    await ts.server.registry.get("c").idle();
    await ts.stop();
    ts = null;

    const h = await readHistory(path.join(dir, "state"), "c");
    const hashed = h.aggregated.filter((a) => a.content);
    expect(hashed.length).toBeGreaterThanOrEqual(STEPS - 2);
    for (const a of hashed) expect(a.content!.ranges).toEqual([0, 8, 8, 8]); // both ranks' slices
    const ok = await verify(dir, "--data");
    expect(ok.out).toContain(`ok: ${hashed.length} steps, every served payload digest matches the data`);
    expect(ok.code).toBe(0);

    // One byte of a served "big" sample, outside every block the fingerprint samples.
    const bigFile = path.join(dir, "big.jsonl");
    const size = fs.statSync(bigFile).size;
    const blocks = sampledBlocks(size);
    const hashedSteps = new Set(hashed.map((a) => a.step));
    const sample = candidatesOf(served, hashedSteps, 0).find((i) => {
      const pos = bigOffsets[i]! + 20;
      return !blocks.some(([a, b]) => pos >= a && pos < b);
    });
    expect(sample).toBeDefined();
    flipByte(bigFile, bigOffsets[sample!]! + 20);
    expect(checkDataFingerprint(h.data!)).toEqual([]); // the fingerprint cannot see this edit
    const expectSteps = stepsServing(served, hashedSteps, 0, sample!);
    expect(expectSteps.length).toBeGreaterThan(0);
    const bad = await verify(dir, "--data");
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`MISMATCH: the served content of ${expectSteps.length} of ${hashed.length} steps differs from the data now`);
    expect(bad.out).toContain(`step ${expectSteps[0]} (domain "big")`);
    expect(bad.out).not.toContain(`"small"`);
    // Without --data, verify cannot see it (the batch digest covers sample indices only).
    expect((await verify(dir)).code).toBe(0);

    // Restored: ok again. Then one byte of the small file: the fingerprint names the file,
    // the content check the steps and the domain.
    flipByte(bigFile, bigOffsets[sample!]! + 20, 0x78);
    expect((await verify(dir, "--data")).code).toBe(0);
    const smallFile = path.join(dir, "small.jsonl");
    const smallLines = fs.readFileSync(smallFile, "utf8").split("\n");
    const smallSample = candidatesOf(served, hashedSteps, 1)[0]!;
    const smallAt = smallLines.slice(0, smallSample).reduce((a, l) => a + l.length + 1, 0) + smallLines[smallSample]!.indexOf("xx");
    flipByte(smallFile, smallAt);
    const stepsSmall = stepsServing(served, hashedSteps, 1, smallSample);
    const bad2 = await verify(dir, "--data");
    expect(bad2.code).toBe(1);
    expect(bad2.out).toContain(smallFile);
    expect(bad2.out).toContain(`MISMATCH: the served content of ${stepsSmall.length} of ${hashed.length} steps differs from the data now`);
    expect(bad2.out).toContain(`step ${stepsSmall[0]} (domain "small")`);
    expect(bad2.out).not.toContain(`"big"`);
  });

  it("token windows (no offsets: equal rows) verify, and a changed token names its domain", async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const SEQ = 15;
    for (const [k, name] of ["code", "math"].entries()) {
      fs.writeFileSync(path.join(dir, `${name}.bin`), Buffer.from(Uint16Array.from({ length: 200 * SEQ + 1 }, (_, i) => (i * 31 + k * 7) % 50_000).buffer));
    }
    const cfg = {
      id: "c",
      batchSize: 8,
      worldSize: 2,
      seed: 9,
      seqLen: SEQ,
      maxSteps: 1000,
      strategy: { name: "exp3", params: { warmupSteps: 0 } },
      domains: ["code", "math"].map((name) => ({ name, train: { format: "tokens", paths: [`${name}.bin`], dtype: "uint16", mode: "windows" } })),
    };
    ts = await startServer(dir, [cfg]);
    const served = new Map<number, { domain: number; sample: number }[]>();
    await Promise.all(
      [0, 1].map(async (rank) => {
        const rep = ts!.client.reporter({ runId: "c", rank, worldSize: 2 });
        for await (const b of ts!.client.batches({ runId: "c", rank, worldSize: 2, maxBatches: 10, prefetch: 2 })) {
          const slots = served.get(b.step) ?? [];
          b.slotDomains.forEach((d, i) => slots.push({ domain: d, sample: b.slotSamples[i]! }));
          served.set(b.step, slots);
          rep.report(b.step, { sampleLosses: Float32Array.from(b.slotDomains, (d) => 1 + d) });
          await rep.flush();
        }
      }),
    );
    await ts.server.registry.get("c").idle();
    await ts.stop();
    ts = null;
    const h = await readHistory(path.join(dir, "state"), "c");
    const hashedSteps = new Set(h.aggregated.filter((a) => a.content).map((a) => a.step));
    expect(hashedSteps.size).toBeGreaterThanOrEqual(8);
    const ok = await verify(dir, "--data");
    expect(ok.out).toContain(`ok: ${hashedSteps.size} steps, every served payload digest matches the data`);
    // Token 3 of a served "math" window (inside that window only).
    const window = candidatesOf(served, hashedSteps, 1)[0]!;
    const file = path.join(dir, "math.bin");
    const buf = fs.readFileSync(file);
    buf[(window * SEQ + 3) * 2]! ^= 1;
    fs.writeFileSync(file, buf);
    const steps = stepsServing(served, hashedSteps, 1, window);
    const bad = await verify(dir, "--data");
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`MISMATCH: the served content of ${steps.length} of ${hashedSteps.size} steps differs from the data now`);
    expect(bad.out).toContain(`step ${steps[0]} (domain "math")`);
    expect(bad.out).not.toContain(`"code"`);
  });

  it("a curriculum run: one difficulty score changed is named by step and domain", async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const names = ["easy", "hard"];
    for (const [di, name] of names.entries()) {
      const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ text: `${name} doc ${i}`, d: ((i * 37 + di * 11) % 120) / 10 }));
      fs.writeFileSync(path.join(dir, `${name}.jsonl`), lines.join("\n") + "\n");
    }
    const cfg = {
      id: "c",
      batchSize: 8,
      worldSize: 1,
      seed: 5,
      maxSteps: 30,
      strategy: { name: "competence", params: {} },
      domains: names.map((name) => ({ name, train: { format: "jsonl", paths: [`${name}.jsonl`], difficultyField: "d" } })),
    };
    ts = await startServer(dir, [cfg]);
    const rep = ts.client.reporter({ runId: "c", rank: 0, worldSize: 1 });
    for await (const b of ts.client.batches({ runId: "c", maxBatches: 30, prefetch: 2 })) {
      rep.report(b.step, { sampleLosses: Float32Array.from(b.slotDomains, (d) => 1 + d) });
      await rep.flush();
    }
    await ts.server.registry.get("c").idle();
    await ts.stop();
    ts = null;
    const ok = await verify(dir, "--data");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok: \d+ steps, every served payload digest matches the data/);
    // The easiest "hard" document becomes the hardest: the order changes, so do the samples served.
    const file = path.join(dir, "hard.jsonl");
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    const easiest = lines.findIndex((l) => (JSON.parse(l) as { d: number }).d === 0);
    lines[easiest] = JSON.stringify({ ...(JSON.parse(lines[easiest]!) as object), d: 99 });
    fs.writeFileSync(file, lines.join("\n") + "\n");
    const bad = await verify(dir, "--data");
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/MISMATCH: \d+ of \d+ steps differ; first at step \d+/);
    expect(bad.out).toMatch(/MISMATCH: the served content of \d+ of \d+ steps differs from the data now: step \d+ \(domain "hard"\)/);
    expect(bad.out).not.toContain(`(domain "easy"`);
  });

  it("a journal written before content digests verifies and says it has none", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-v1-"));
    dirs.push(dir);
    fs.cpSync(FIXTURE, dir, { recursive: true });
    const write = process.stdout.write.bind(process.stdout);
    let out = "";
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    const before = process.exitCode;
    process.exitCode = 0;
    try {
      await replayCommand(["verify", "--journal", path.join(dir, "state"), "--run", "adapt", "--base-dir", dir, "--data"]);
    } finally {
      process.stdout.write = write;
    }
    const code = Number(process.exitCode ?? 0);
    process.exitCode = before;
    expect(out).toContain(`run "adapt" has no content digests recorded`);
    expect(out).toMatch(/ok: \d+ steps, every recomputed batch digest matches/);
    expect(code).toBe(0);
  });
});

/** Samples of `domain` served at hashed steps, in serving order. */
function candidatesOf(served: Map<number, { domain: number; sample: number }[]>, hashed: Set<number>, domain: number): number[] {
  return [...served].filter(([s]) => hashed.has(s)).flatMap(([, slots]) => slots.filter((x) => x.domain === domain).map((x) => x.sample));
}

/** The hashed steps that served `sample` of `domain`, ascending. */
function stepsServing(served: Map<number, { domain: number; sample: number }[]>, hashed: Set<number>, domain: number, sample: number): number[] {
  return [...served]
    .filter(([s, slots]) => hashed.has(s) && slots.some((x) => x.domain === domain && x.sample === sample))
    .map(([s]) => s)
    .sort((a, b) => a - b);
}
