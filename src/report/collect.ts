/**
 * Reading one run's history out of a journal for the report: weights timeline, per-domain
 * training and eval losses, samples served per domain, version markers.
 *
 * The journal alone is the input (no server, no data files), read once as a stream with
 * src/history's `scanHistory(dir, { from: "all" })`, so a report can be drawn from a copied data dir of
 * a finished or crashed run. Memory stays bounded for long runs: per-step values go into a
 * fixed number of bins whose width doubles when the run outgrows them (the picture has a
 * few hundred pixels across anyway), and domains beyond `maxSeries` are summed as "other"
 * exactly like the metrics (src/metrics/buckets.ts).
 *
 * Samples served are derived, not journaled: the batch of a step is a pure function of
 * the versions (DESIGN.md determinism 1), so the `Apportioner` fed the run's versions gives
 * the exact cumulative per-domain counts at any step. They are drawn up to the last step
 * the trainers reported (or that was aggregated), the last step known to have been served.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isShuffledEvalStep, usesStructureProbes } from "../runs/probes.js";
import type { RunConfig } from "../config/schema.js";
import { EventType, resolveJournalDir, scanHistory, type SignalsEvent, type Version } from "../history/index.js";
import type { StoredRecord } from "../journal/index.js";
import { Apportioner } from "../sampling/index.js";
import { domainBuckets, meanBySeries, sumBySeries, type DomainBuckets } from "../metrics/buckets.js";
import { notFound } from "../errors.js";

/** Version markers kept for drawing; the count of all versions is kept separately. */
const MAX_MARKERS = 2000;

/** A version as the report draws it: the history's Version with its weights per drawn series. */
export type ReportVersion = Omit<Version, "weights" | "competence"> & {
  /** Weights per series. */
  readonly weights: number[];
};

export interface ReportData {
  readonly runId: string;
  readonly config: RunConfig;
  /** Series labels (domains, possibly with "other" last). */
  readonly series: string[];
  readonly state: "open" | "closed";
  /** Steps on the x axis: [0, endStep). */
  readonly endStep: number;
  /** Last step with reported signals or aggregation (-1: none). */
  readonly lastStep: number;
  /** Bin width in steps; bin i covers [i·width, (i+1)·width). */
  readonly binWidth: number;
  /** Per bin, per series: step-weighted mean weight (null where no version covers the bin). */
  readonly weights: (number[] | null)[];
  /** Per bin, per series: mean reported training loss (null where none). */
  readonly trainLoss: (number | null)[][];
  /** Eval losses per reported step, per series (mean over the series' domains that reported). */
  readonly evalLoss: { step: number; values: (number | null)[] }[];
  /** Cumulative samples per series at each step in `servedSteps`. */
  readonly servedSteps: number[];
  readonly served: number[][];
  /** Versions in commit order (the first MAX_MARKERS); `versionCount` counts all. */
  readonly versions: ReportVersion[];
  readonly versionCount: number;
  readonly signalCount: number;
  readonly records: number;
  /** Per series: train samples in one epoch (from the run's creation record), or null if not recorded. */
  readonly epochSamples: number[] | null;
}

export interface CollectOptions {
  /** Series per chart at most (default 24): the rest is summed as "other". */
  readonly maxSeries?: number;
  /** Bins across the step axis (default 512). */
  readonly bins?: number;
  /** Progress in journal bytes read. */
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Per-step accumulator with a fixed number of bins; the width doubles (adjacent bins merge)
 * when a step falls past the last bin. Each cell holds a weighted sum and its weight.
 */
export class Bins {
  width = 1;
  private readonly cap: number;
  private readonly k: number;
  readonly sum: Float64Array;
  readonly wt: Float64Array;

  constructor(cap: number, k: number) {
    this.cap = Math.max(2, cap - (cap % 2));
    this.k = k;
    this.sum = new Float64Array(this.cap * k);
    this.wt = new Float64Array(this.cap * k);
  }

  get capacity(): number {
    return this.cap;
  }

  /** Make sure `step` has a bin. */
  cover(step: number): void {
    while (step >= this.cap * this.width) this.merge();
  }

  /** Bin width := max(width, w) (w a power of two): to align several accumulators. */
  widen(w: number): void {
    while (this.width < w) this.merge();
  }

  add(step: number, s: number, value: number, weight = 1): void {
    this.cover(step);
    const i = Math.floor(step / this.width) * this.k + s;
    this.sum[i]! += value * weight;
    this.wt[i]! += weight;
  }

  /** Add `values` (one per series) over the steps [from, to), weighted by overlap. */
  addRange(from: number, to: number, values: readonly number[]): void {
    if (to <= from) return;
    this.cover(to - 1);
    const w = this.width;
    for (let b = Math.floor(from / w); b * w < to; b++) {
      const overlap = Math.min(to, (b + 1) * w) - Math.max(from, b * w);
      for (let s = 0; s < this.k; s++) {
        this.sum[b * this.k + s]! += values[s]! * overlap;
        this.wt[b * this.k + s]! += overlap;
      }
    }
  }

  /** Mean per bin per series (null where nothing was added), for bins [0, n). */
  means(n: number): (number | null)[][] {
    const out: (number | null)[][] = [];
    for (let b = 0; b < n; b++) {
      const row: (number | null)[] = [];
      for (let s = 0; s < this.k; s++) {
        const wt = this.wt[b * this.k + s]!;
        row.push(wt > 0 ? this.sum[b * this.k + s]! / wt : null);
      }
      out.push(row);
    }
    return out;
  }

  private merge(): void {
    const k = this.k;
    const half = this.cap / 2;
    for (let b = 0; b < half; b++) {
      for (let s = 0; s < k; s++) {
        this.sum[b * k + s] = this.sum[2 * b * k + s]! + this.sum[(2 * b + 1) * k + s]!;
        this.wt[b * k + s] = this.wt[2 * b * k + s]! + this.wt[(2 * b + 1) * k + s]!;
      }
    }
    this.sum.fill(0, half * k);
    this.wt.fill(0, half * k);
    this.width *= 2;
  }
}

/** Journal bytes: total, and the bytes before each segment (for progress by record position). */
function segmentSizes(dir: string): { total: number; before: Map<string, number> } {
  const segs = fs.readdirSync(dir).filter((f) => f.endsWith(".seg")).sort();
  const before = new Map<string, number>();
  let total = 0;
  for (const f of segs) {
    before.set(f, total);
    total += fs.statSync(path.join(dir, f)).size;
  }
  return { total, before };
}

/** Read run `runId` from the journal in `dir` (data dir or journal dir). */
export async function collectReport(dir: string, runId: string, opts: CollectOptions = {}): Promise<ReportData> {
  const jdir = resolveJournalDir(dir);
  const maxSeries = opts.maxSeries ?? 24;
  const nBins = opts.bins ?? 512;
  const sizes = opts.onProgress ? segmentSizes(jdir) : null;

  let config: RunConfig | null = null;
  let buckets: DomainBuckets | null = null;
  let state: "open" | "closed" = "open";
  let weightBins: Bins | null = null;
  let lossBins: Bins | null = null;
  let apportioner: Apportioner | null = null;
  const versions: ReportVersion[] = [];
  let versionCount = 0;
  let lastVersion: { id: number; fromStep: number; weights: number[] } | null = null;
  const evalByStep = new Map<number, (number | null)[]>();
  let lastStep = -1;
  let signalCount = 0;
  let records = 0;
  const otherRuns = new Set<string>();
  let epochSamples: number[] | null = null;

  // Odd eval steps of a run with structure probes measured shuffled probes: not the eval curve.
  let structure = false;
  const start = (cfg: RunConfig): void => {
    if (config) return;
    config = cfg;
    const names = cfg.domains.map((d) => d.name);
    buckets = domainBuckets(names, maxSeries);
    weightBins = new Bins(nBins, buckets.labels.length);
    lossBins = new Bins(nBins, buckets.labels.length);
    apportioner = new Apportioner(names.length, cfg.batchSize);
    structure = usesStructureProbes(cfg);
  };

  const applyVersion = (v: Version): void => {
    if (lastVersion && v.version <= lastVersion.id) return; // repeated in a snapshot
    const b = buckets!;
    const w = sumBySeries(b, v.weights);
    if (lastVersion) weightBins!.addRange(lastVersion.fromStep, v.fromStep, lastVersion.weights);
    apportioner!.addVersion({ fromStep: v.fromStep, weights: v.weights });
    lastVersion = { id: v.version, fromStep: v.fromStep, weights: w };
    versionCount++;
    if (versions.length < MAX_MARKERS) {
      versions.push({ version: v.version, fromStep: v.fromStep, committedAtStep: v.committedAtStep, reason: v.reason, weights: w });
    }
  };

  const applySignals = (e: SignalsEvent): void => {
    const b = buckets!;
    signalCount++;
    lastStep = Math.max(lastStep, e.step);
    const sum = sumBySeries(b, e.lossSum);
    const cnt = sumBySeries(b, e.count);
    for (let s = 0; s < sum.length; s++) if (cnt[s]! > 0) lossBins!.add(e.step, s, sum[s]! / cnt[s]!, cnt[s]!);
    if (e.evalLoss && !(structure && isShuffledEvalStep(e.step))) {
      const perDomain = new Array<number | null>(e.count.length).fill(null);
      for (const [d, v] of Object.entries(e.evalLoss)) perDomain[Number(d)] = v;
      const prev = evalByStep.get(e.step);
      const vals = meanBySeries(b, perDomain);
      evalByStep.set(e.step, prev ? prev.map((p, s) => vals[s] ?? p) : vals);
    }
  };

  const onRecord = (r: StoredRecord): void => {
    records++;
    if (sizes && (records & 1023) === 0) opts.onProgress!((sizes.before.get(r.segment) ?? 0) + r.offset, sizes.total);
  };
  for await (const e of scanHistory(jdir, { from: "all", onRecord })) {
    if (e.body.runId !== runId) {
      otherRuns.add(e.body.runId);
      continue;
    }
    switch (e.type) {
      case EventType.RunCreated:
        start(e.body.config);
        if (e.body.domains && !epochSamples) epochSamples = e.body.domains.map((d) => d.trainSamples);
        break;
      case EventType.Snapshot:
        start(e.body.config);
        for (const v of e.body.versions) applyVersion(v);
        lastStep = Math.max(lastStep, e.body.lastAggregated);
        state = e.body.state;
        break;
      case EventType.Version:
        if (config) applyVersion(e.body);
        break;
      case EventType.Signals:
        if (config) applySignals(e.body);
        break;
      case EventType.Aggregated:
        lastStep = Math.max(lastStep, e.body.step);
        break;
      case EventType.RunClosed:
        state = "closed";
        break;
      case EventType.Lease:
        break;
    }
  }
  if (sizes) opts.onProgress!(sizes.total, sizes.total);
  if (!config || !lastVersion) {
    const known = [...otherRuns].sort();
    throw notFound(`run "${runId}" not found in journal ${jdir}${known.length ? `; runs there: ${known.join(", ")}` : " (no runs)"}`);
  }
  const cfg: RunConfig = config;
  const b: DomainBuckets = buckets!;
  const lv: { id: number; fromStep: number; weights: number[] } = lastVersion;
  const endStep = Math.max(lastStep + 1, lv.fromStep + 1, 1);
  weightBins!.addRange(lv.fromStep, endStep, lv.weights);
  // Align both accumulators on one bin width covering [0, endStep).
  weightBins!.cover(endStep - 1);
  lossBins!.cover(endStep - 1);
  const width = Math.max(weightBins!.width, lossBins!.width);
  weightBins!.widen(width);
  lossBins!.widen(width);
  const n = Math.ceil(endStep / width);

  const weights = weightBins!.means(n).map((row) => (row.every((x) => x !== null) ? (row as number[]) : null));
  const trainLoss = lossBins!.means(n);

  const servedSteps: number[] = [];
  const served: number[][] = [];
  const servedEnd = lastStep + 1;
  if (servedEnd > 0) {
    const points = Math.min(servedEnd, nBins);
    for (let i = 0; i <= points; i++) {
      const step = Math.round((i * servedEnd) / points);
      if (servedSteps.length > 0 && servedSteps[servedSteps.length - 1] === step) continue;
      servedSteps.push(step);
      served.push(sumBySeries(b, apportioner!.cumulative(step)));
    }
  }

  const evalLoss = [...evalByStep.entries()].sort((x, y) => x[0] - y[0]).map(([step, values]) => ({ step, values }));
  return {
    runId,
    config: cfg,
    series: [...b.labels],
    state,
    endStep,
    lastStep,
    binWidth: width,
    weights,
    trainLoss,
    evalLoss,
    servedSteps,
    served,
    versions,
    versionCount,
    signalCount,
    records,
    epochSamples: epochSamples ? sumBySeries(b, epochSamples) : null,
  };
}
