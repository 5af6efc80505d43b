/**
 * kill -9 test: a child process appends as fast as it can and reports every acknowledged
 * append; we SIGKILL it at random moments (sometimes during its own recovery), restart it on
 * the same directory, and check that nothing acknowledged was lost and nothing garbled or
 * out of order was recovered.
 *
 * The child is bundled once with esbuild (tsx's own dependency) so each start costs tens of
 * milliseconds instead of the ~0.5 s of loading it through tsx.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Journal, checkJournal } from "../../src/journal/index.js";
import { crashPayload } from "./crash-payload.js";

const here = fileURLToPath(new URL(".", import.meta.url));
let work: string;
let childJs: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "mixflow-journal-crash-"));
  childJs = join(work, "child.mjs");
  const req = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"));
  const esbuild = req("esbuild") as typeof import("esbuild");
  await esbuild.build({
    entryPoints: [join(here, "crash-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: childJs,
    logLevel: "silent",
  });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Round {
  start: number | null;
  acked: number[];
  bad: string[];
  warnings: string[];
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Run the child on `dir`, SIGKILL it `killAfterMs` after it started appending (or after spawn if early). */
function round(dir: string, killAfterMs: number, early: boolean): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childJs, dir], { stdio: ["ignore", "pipe", "pipe"] });
    const r: Round = { start: null, acked: [], bad: [], warnings: [], stderr: "", code: null, signal: null };
    let buf = "";
    let timer: NodeJS.Timeout | null = null;
    const arm = (): void => {
      timer ??= setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    };
    if (early) arm();
    const safety = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("ack ")) r.acked.push(Number(line.slice(4)));
        else if (line.startsWith("start ")) {
          r.start = Number(line.slice(6));
          arm();
        } else if (line.startsWith("BAD ")) r.bad.push(line);
        else if (line.startsWith("warn ")) r.warnings.push(line.slice(5));
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (r.stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      clearTimeout(safety);
      r.code = code;
      r.signal = signal;
      resolve(r);
    });
  });
}

describe("crash safety (SIGKILL)", () => {
  it("loses no acknowledged append across 24 random kills, and recovers nothing garbled", async () => {
    const dir = join(work, "journal");
    let seed = 20240601;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const acked = new Set<number>();
    let maxAcked = -1;
    let totalAcked = 0;
    let childWarnings = 0;
    const t0 = Date.now();
    for (let i = 0; i < 24; i++) {
      const early = i % 6 === 5; // sometimes kill during startup/recovery
      const r = await round(dir, early ? 30 + rnd(120) : 20 + rnd(150), early);
      expect(r.bad, r.stderr).toEqual([]);
      // The only things recovery may do silently-with-a-warning: drop a torn tail, remove a .tmp.
      for (const w of r.warnings) expect(w).toMatch(/^(dropped torn tail|removed journal-\d+\.seg\.tmp)/);
      childWarnings += r.warnings.length;
      expect(r.signal, `round ${i} ended by itself: code ${r.code} ${r.stderr}`).toBe("SIGKILL");
      if (r.start !== null) {
        // Everything acknowledged before is accounted for (in a snapshot or as a record).
        expect(r.start, `round ${i}`).toBeGreaterThan(maxAcked);
      }
      for (const s of r.acked) {
        acked.add(s);
        if (s > maxAcked) maxAcked = s;
      }
      totalAcked += r.acked.length;
    }
    const elapsed = Date.now() - t0;
    if (process.env.JOURNAL_CRASH_DEBUG) console.log({ totalAcked, maxAcked, elapsed, childWarnings });

    const { journal, records, warnings } = await Journal.open({ dir });
    await journal.close();
    let base = 0;
    const seqs: number[] = [];
    for (const r of records) {
      if (r.type === 9) {
        expect(r.snapshot).toBe(true);
        base = r.payload.readUInt32LE(0);
      } else {
        expect(r.type).toBe(1);
        const s = base + seqs.length;
        expect(r.payload.equals(crashPayload(s)), `record ${s} garbled at ${r.segment}@${r.offset}`).toBe(true);
        seqs.push(s);
      }
    }
    const end = base + seqs.length;
    if (process.env.JOURNAL_CRASH_DEBUG) console.log({ base, records: seqs.length, end, warnings, files: (await checkJournal(dir)).segments.length });
    for (const s of acked) expect(s < end, `acked seq ${s} lost (journal ends at ${end})`).toBe(true);
    expect(warnings.every((w) => /torn tail|\.tmp/.test(w))).toBe(true);
    expect((await checkJournal(dir)).status).toBe("ok");
    // The test must have exercised something real.
    expect(totalAcked).toBeGreaterThan(200);
    expect(end).toBeGreaterThan(maxAcked);
    expect(elapsed).toBeLessThan(40_000);
  });
});
