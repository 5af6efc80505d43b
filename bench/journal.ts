/**
 * Journal benchmark: durable appends per second with group commit versus one fsync per
 * record, and recovery time for a journal the size of a 1,000,000-step run.
 *
 *   npx tsx bench/journal.ts            (npm run bench:journal)
 *
 * Both throughput numbers are measured in the same run, on the same disk, with the same
 * ~200-byte payloads (about the size of one signal report), so the ratio is meaningful even
 * where absolute numbers depend on the machine's fsync latency. The last line is one JSON
 * object for tooling.
 */
import { open, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { Journal } from "../src/journal/index.js";
import { encodeFrame, frameBytes } from "../src/journal/format.js";

const REPORT_BYTES = 200;
const APPENDERS = Number(process.env.JOURNAL_BENCH_APPENDERS ?? 1000);
const GROUP_TOTAL = Number(process.env.JOURNAL_BENCH_REPORTS ?? 300_000);
const BASELINE_SECONDS = 3;
const STEPS = 1_000_000;
const STEP_BYTES = 100;
const CHECKPOINT_EVERY = 100_000;
const RUNS_IN_SNAPSHOT = 8;
const SNAPSHOT_BYTES_PER_RUN = 16 * 1024;

function report(i: number): Buffer {
  const b = Buffer.alloc(REPORT_BYTES, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

async function groupCommit(
  root: string,
  appenders: number,
  total: number,
): Promise<{ perS: number; fsyncs: number; meanFsyncMs: number; meanBatch: number }> {
  const dir = join(root, `group-${appenders}`);
  let fsyncS = 0;
  let fsyncN = 0;
  const { journal } = await Journal.open({ dir, onFsync: (s) => ((fsyncS += s), fsyncN++) });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    [...Array(appenders).keys()].map(async () => {
      // Each appender is one "trainer rank" that waits for its ack before sending the next report.
      while (next < total) await journal.append(2, report(next++));
    }),
  );
  const s = (performance.now() - t0) / 1000;
  await journal.close();
  return { perS: total / s, fsyncs: fsyncN, meanFsyncMs: (fsyncS / fsyncN) * 1000, meanBatch: total / fsyncN };
}

/** Baseline: the same frames, written sequentially, write() + fdatasync() per record. */
async function baseline(root: string): Promise<{ perS: number; n: number }> {
  const fh = await open(join(root, "baseline.seg"), "w");
  const frame = Buffer.alloc(frameBytes(REPORT_BYTES));
  let pos = 0;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < BASELINE_SECONDS * 1000) {
    encodeFrame(frame, 0, 2, report(n));
    await fh.write(frame, 0, frame.length, pos);
    await fh.datasync();
    pos += frame.length;
    n++;
  }
  const s = (performance.now() - t0) / 1000;
  await fh.close();
  return { perS: n / s, n };
}

/** Write a 1M-step journal (durability "none": only its shape matters here), then time open. */
async function recovery(root: string, withCheckpoints: boolean): Promise<{ openS: number; streamS: number; records: number; bytes: number; writeS: number }> {
  const dir = join(root, withCheckpoints ? "steps-cp" : "steps-nocp");
  const { journal } = await Journal.open({ dir, durability: "none" });
  const step = Buffer.alloc(STEP_BYTES, 7);
  const snapshot = [...Array(RUNS_IN_SNAPSHOT).keys()].map((r) => ({ type: 1, payload: Buffer.alloc(SNAPSHOT_BYTES_PER_RUN, r) }));
  const tw = performance.now();
  const CHUNK = 1000;
  for (let s = 0; s < STEPS; s += CHUNK) {
    const recs = [];
    for (let k = 0; k < CHUNK; k++) {
      const b = Buffer.from(step);
      b.writeUInt32LE(s + k, 0);
      recs.push({ type: 3, payload: b });
    }
    await journal.appendMany(recs);
    const done = s + CHUNK;
    // Checkpoints at 100k .. 900k: recovery sees the worst case, a full interval after the last one.
    if (withCheckpoints && done % CHECKPOINT_EVERY === 0 && done < STEPS) await journal.checkpoint(snapshot, { dropOlder: true });
  }
  const bytes = journal.stats().bytes;
  await journal.close();
  const writeS = (performance.now() - tw) / 1000;
  const t0 = performance.now();
  const res = await Journal.open({ dir, durability: "none" });
  const openS = (performance.now() - t0) / 1000;
  const records = res.records.length;
  await res.journal.close();
  let streamed = 0;
  const t1 = performance.now();
  const res2 = await Journal.open({ dir, durability: "none", onRecord: () => void streamed++ });
  const streamS = (performance.now() - t1) / 1000;
  await res2.journal.close();
  if (streamed !== records) throw new Error(`streamed ${streamed} records, collected ${records}`);
  return { openS, streamS, records, bytes, writeS };
}

const root = await mkdtemp(join(tmpdir(), "mixflow-bench-journal-"));
try {
  console.log(`journal bench: node ${process.version}, ${cpus().length} cpus, dir ${root}`);
  const runs: [number, number][] = [
    [APPENDERS, GROUP_TOTAL],
    [64, 50_000],
    [1, 3_000],
  ];
  const results = [];
  for (const [appenders, total] of runs) {
    const r = await groupCommit(root, appenders, total);
    results.push({ appenders, ...r });
    console.log(
      `journal, ${appenders} concurrent appender(s): ${total} durable ${REPORT_BYTES}-byte reports: ${r.perS.toFixed(0)} reports/s ` +
        `(${r.fsyncs} fsyncs, mean ${r.meanFsyncMs.toFixed(2)} ms, mean ${r.meanBatch.toFixed(0)} reports per fsync)`,
    );
  }
  const g = results[0]!;
  const b = await baseline(root);
  console.log(`baseline: write+fdatasync per report, sequential: ${b.perS.toFixed(0)} reports/s (${b.n} in ${BASELINE_SECONDS} s)`);
  const rc = await recovery(root, true);
  console.log(
    `recovery, 1M steps with a checkpoint every 100k (dropOlder, ${RUNS_IN_SNAPSHOT} x ${SNAPSHOT_BYTES_PER_RUN / 1024} KiB snapshot): ` +
      `open ${rc.openS.toFixed(3)} s for ${rc.records} records, ${(rc.bytes / 1e6).toFixed(1)} MB on disk (streaming: ${rc.streamS.toFixed(3)} s)`,
  );
  const rn = await recovery(root, false);
  console.log(
    `recovery, 1M steps without checkpoints: open ${rn.openS.toFixed(3)} s for ${rn.records} records, ${(rn.bytes / 1e6).toFixed(1)} MB ` +
      `(${(rn.bytes / 1e6 / rn.openS).toFixed(0)} MB/s; streaming: ${rn.streamS.toFixed(3)} s); page cache warm`,
  );
  console.log(
    JSON.stringify({
      reports_per_s: Math.round(g.perS),
      baseline_reports_per_s: Math.round(b.perS),
      ratio: Number((g.perS / b.perS).toFixed(1)),
      recovery_s: Number(rc.openS.toFixed(3)),
      recovery_records: rc.records,
      recovery_no_checkpoint_s: Number(rn.openS.toFixed(3)),
      recovery_no_checkpoint_records: rn.records,
      recovery_no_checkpoint_streaming_s: Number(rn.streamS.toFixed(3)),
      fsyncs: g.fsyncs,
      mean_fsync_ms: Number(g.meanFsyncMs.toFixed(2)),
      reports_per_fsync: Math.round(g.meanBatch),
      appenders: APPENDERS,
      reports_per_s_64_appenders: Math.round(results[1]!.perS),
      reports_per_s_1_appender: Math.round(results[2]!.perS),
      payload_bytes: REPORT_BYTES,
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
