/**
 * CreateRun never stalls the server: while a large run is prepared (issue 12's shape: nine
 * ~0.9 MB "corpus" domains and three 5 MB domains, generated JSONL with near-duplicates,
 * under the `mixflow` strategy so that indexing, near-duplicate clustering, compressibility,
 * holdout carving and data fingerprinting all run), no turn of the event loop does more
 * than 50 ms of work, another run's NextBatch keeps its p99 within 50 ms of the same calls'
 * p99 without a CreateRun, fresh connections keep succeeding, and GetRun on the new run
 * reports its preparation's progress.
 *
 * The stall bound is absolute and work-based (./loop-work.ts: main-thread CPU time between
 * two turns of a 5 ms timer, a histogram like perf_hooks' but of work): the wall-clock
 * loop delay (monitorEventLoopDelay, printed too) also counts the time a loaded machine did
 * not schedule the process at all (p99 ~100 ms at load 7 with or without a CreateRun), so
 * an absolute bound on it fails beside a CPU hog while the server blocks for 15 ms.
 *
 * Bounded by work: the test runs exactly as long as the preparation takes. Everything it
 * reads is generated here; nothing outside the repository is needed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient, type RunInfo } from "../../src/client/index.js";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { monitorLoopWork } from "./loop-work.js";

const BIG_DOMAINS = 3;
const DOMAIN_BYTES = 5 * 1024 * 1024;
/** Corpus-sized domains: each under 1 MiB, so its fingerprint hashes the whole file. */
const CORPUS_DOMAINS = 9;
const CORPUS_BYTES = 900 * 1024;
/** The most work one turn of the event loop may do (issue 12: nothing blocks it for more than 50 ms). */
const TURN_WORK_MS = 50;
/** NextBatch calls of the baseline measured before the CreateRun. */
const BASELINE_CALLS = 1000;
/** Hang guard for the whole test, not a speed bound. */
const GUARD_MS = 600_000;

/** A deterministic ~`bytes` JSONL domain: word salad documents, every 8th a near-copy of an earlier one. */
function writeBigDomain(file: string, seed: number, bytes: number): void {
  let s = seed >>> 0;
  const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const words = Array.from({ length: 3000 }, (_, i) => `w${(i * 2654435761) % 100_000}`);
  const docs: string[] = [];
  const out: string[] = [];
  let n = 0;
  while (n < bytes) {
    let text: string;
    if (docs.length > 16 && docs.length % 8 === 0) {
      const w = docs[Math.floor(rnd() * docs.length)]!.split(" ");
      w[Math.floor(rnd() * w.length)] = "edited";
      text = w.join(" ");
    } else {
      text = Array.from({ length: 60 + Math.floor(rnd() * 240) }, () => words[Math.floor(rnd() * words.length)]).join(" ");
    }
    docs.push(text);
    const line = JSON.stringify({ text });
    out.push(line);
    n += line.length + 1;
  }
  fs.writeFileSync(file, out.join("\n") + "\n");
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)]!;
}

describe("CreateRun of a large run while another run serves", () => {
  let dir: string;
  let s: TestServer;

  beforeAll(async () => {
    dir = tmpDir("mixflow-prepare-");
    for (let d = 0; d < BIG_DOMAINS; d++) writeBigDomain(path.join(dir, `big${d}.jsonl`), 17 + d, DOMAIN_BYTES);
    for (let d = 0; d < CORPUS_DOMAINS; d++) writeBigDomain(path.join(dir, `corpus${d}.jsonl`), 101 + d, CORPUS_BYTES);
    s = await startServer(dir, [runConfigFor(dir, { id: "live", maxSteps: 0, worldSize: 1, batchSize: 8 })]);
  });

  afterAll(async () => {
    await s?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(
    "keeps every event-loop turn under 50 ms of work and NextBatch p99 within 50 ms of its baseline, loses no connection, and shows progress on GetRun",
    async () => {
      const big = {
        id: "big",
        batchSize: 16,
        seed: 3,
        strategy: { name: "mixflow" },
        domains: [
          ...Array.from({ length: CORPUS_DOMAINS }, (_, d) => ({ name: `corpus${d}`, train: { format: "jsonl", paths: [`corpus${d}.jsonl`] } })),
          ...Array.from({ length: BIG_DOMAINS }, (_, d) => ({ name: `big${d}`, train: { format: "jsonl", paths: [`big${d}.jsonl`] } })),
        ],
      };
      const admin = new MixflowClient(s.server.address, { deadlineMs: GUARD_MS });
      let step = 0;
      // Warm the live run's path first, so the measurement sees serving, not first-call set-up.
      for (; step < 20; step++) await s.client.nextBatch("live", step);

      /**
       * Serve the live run with back-to-back NextBatch calls and, every 100 ms, GetRun `watch`
       * on a fresh connection (its HTTP/2 handshake must complete too), until `done()`.
       */
      const measure = async (watch: string, done: (calls: number) => boolean, onInfo: (info: RunInfo) => void = () => undefined) => {
        const latencies: number[] = [];
        const failures: string[] = [];
        let connections = 0;
        const h = monitorEventLoopDelay({ resolution: 5 });
        h.enable();
        const work = monitorLoopWork();
        const serving = (async () => {
          while (!done(latencies.length)) {
            const t = performance.now();
            try {
              await s.client.nextBatch("live", step++);
              latencies.push(performance.now() - t);
            } catch (e) {
              failures.push(`NextBatch step ${step - 1}: ${String(e)}`);
            }
          }
        })();
        const watching = (async () => {
          while (!done(latencies.length)) {
            const c = new MixflowClient(s.server.address, { deadlineMs: 10_000 });
            try {
              onInfo(await c.getRun(watch));
              connections++;
            } catch (e) {
              failures.push(`GetRun on a new connection: ${String(e)}`);
            } finally {
              c.close();
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
        await Promise.all([serving, watching]);
        h.disable();
        const w = work.stop();
        return { latencies, failures, connections, loopP99: h.percentile(99) / 1e6, loopMax: h.max / 1e6, workP99: w.percentile(99) / 1e6, workMax: w.max / 1e6, workTop: work.top() };
      };

      // Baseline in the same run, the same calls without a CreateRun: what this machine's
      // load alone costs (on a shared 2-core box the scheduler adds tens of ms, which is not
      // the server's stall). The bounds are 50 ms above it.
      const base = await measure("live", (calls) => calls >= BASELINE_CALLS);

      const progress: string[] = [];
      let created: RunInfo | null = null;
      let done = false;
      const creating = admin.createRun(big).then((r) => (created = r)).finally(() => (done = true));
      const during = await measure("big", () => done, (info) => {
        if (info.state !== "preparing") return;
        expect(info.preparation!.domainsTotal).toBe(CORPUS_DOMAINS + BIG_DOMAINS);
        progress.push(`${info.preparation!.domainsDone}/${info.preparation!.domainsTotal} ${info.preparation!.phase} ${info.preparation!.domain}`);
      });
      await creating;
      // The same baseline again after: the machine's load drifts (other suites start and
      // end), so the bound takes the busier of the two.
      const after = await measure("live", (calls) => calls >= BASELINE_CALLS);
      admin.close();
      const { latencies, failures, connections } = during;
      const baseP99 = Math.max(p99(base.latencies), p99(after.latencies));
      const baseLoopP99 = Math.max(base.loopP99, after.loopP99);
      const loopP99 = during.loopP99;
      const result = {
        baselineNextBatchP99Ms: Number(baseP99.toFixed(2)),
        baselineLoopDelayP99Ms: Number(baseLoopP99.toFixed(2)),
        baselineCalls: base.latencies.length,
        nextBatchCalls: latencies.length,
        nextBatchP99Ms: Number(p99(latencies).toFixed(2)),
        nextBatchMaxMs: Number(Math.max(...latencies).toFixed(2)),
        loopDelayP99Ms: Number(loopP99.toFixed(2)),
        loopDelayMaxMs: Number(during.loopMax.toFixed(2)),
        loopWorkP99Ms: Number(during.workP99.toFixed(2)),
        loopWorkMaxMs: Number(during.workMax.toFixed(2)),
        loopWorkTopMs: during.workTop,
        baselineLoopWorkMaxMs: Number(Math.max(base.workMax, after.workMax).toFixed(2)),
        connections,
        progressSamples: progress.length,
        firstProgress: progress[0],
        lastProgress: progress.at(-1),
      };
      console.log(JSON.stringify({ prepare: result }));

      expect(base.failures).toEqual([]);
      expect(after.failures).toEqual([]);
      expect(created!.state).toBe("open");
      expect(created!.domains.map((d) => d.trainSamples).every((n) => n > 300)).toBe(true);
      expect(failures).toEqual([]);
      // The preparation took long enough to be measured while it ran.
      expect(latencies.length).toBeGreaterThan(50);
      expect(progress.length).toBeGreaterThan(2);
      expect(result.nextBatchP99Ms).toBeLessThan(50 + baseP99);
      expect(during.workMax).toBeLessThan(TURN_WORK_MS);
      // GetRun after creation: an ordinary open run.
      expect((await s.client.getRun("big")).preparation).toBeNull();
    },
    GUARD_MS,
  );
});
