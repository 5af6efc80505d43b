/**
 * `mixflow report` on a recorded run: the data read from the journal equals the run's own
 * history (versions, reported losses, planner counts), the CLI writes HTML and SVG with one
 * series per domain per chart, and both render in headless Chromium without console
 * messages into a picture that is not blank. A synthetic long journal with a compacting
 * checkpoint checks the binning and the snapshot path.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfig } from "../../src/config/schema.js";
import { Journal } from "../../src/journal/index.js";
import { encodeEvent, EventType, type RunEvent, type SignalsEvent } from "../../src/history/events.js";
import { collectReport, Bins } from "../../src/report/collect.js";
import { renderHtml, renderSvg, sharePanels } from "../../src/report/render.js";
import { Apportioner } from "../../src/sampling/apportion.js";
import { DOMAINS, driveRun, startServer, type Driven } from "../metrics/helpers.js";
import { requireTool } from "../helpers/tools.js";
import { decodePng, distinctColours, nonWhite } from "./png.js";

const RUN = "rep";
const STEPS = 30;

interface Recorded {
  root: string;
  dataDir: string;
  driven: Driven;
  versions: { id: number; fromStep: number; weights: readonly number[] }[];
  cumulative: number[];
}

let rec: Recorded;

beforeAll(async () => {
  const s = await startServer(RUN);
  const driven = await driveRun(s.server.address, s.server, RUN, STEPS);
  const run = s.server.registry.get(RUN);
  const versions = run.versions.map((v) => ({ id: v.version, fromStep: v.fromStep, weights: [...v.weights] }));
  const cumulative = Array.from(run.planner.cumulative(STEPS));
  await s.stop();
  rec = { root: s.root, dataDir: path.join(s.root, "state"), driven, versions, cumulative };
});

afterAll(() => {
  if (rec) fs.rmSync(rec.root, { recursive: true, force: true });
});

/** Run the CLI through tsx (as `npm run mixflow` does). */
function cli(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

/** Series elements per chart, from markup (or a serialised DOM). */
function seriesByChart(markup: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of markup.matchAll(/data-chart="([^"]+)" data-series="([^"]+)"/g)) (out[m[1]!] ??= []).push(m[2]!);
  return out;
}

/** The four whole-run charts with one series per domain, and a loss panel and a share panel per domain. */
function expectCharts(charts: Record<string, string[]>): void {
  const panels = (prefix: string): string[] => DOMAINS.map((d) => `${prefix}-${d}`);
  expect(Object.keys(charts).sort()).toEqual(
    ["eval-loss", "served", "train-loss", "weights", ...panels("share-panels"), ...panels("train-loss-panels")].sort(),
  );
  for (const c of ["eval-loss", "served", "train-loss", "weights"]) expect(charts[c]).toEqual([...DOMAINS]);
  for (const d of DOMAINS) {
    expect(charts[`train-loss-panels-${d}`]).toEqual([d]);
    expect(charts[`share-panels-${d}`]).toEqual([`${d} target`, `${d} realised`]);
  }
}

describe("what a user reads in the report", () => {
  it("realised share per window tracks the target, epochs per domain, each version's reason in the strategy's words", async () => {
    const d = await collectReport(rec.dataDir, RUN);
    const html = renderHtml(d);
    // exp3 explains its versions (which domain's smoothed loss moved the weights).
    expect(d.versions.slice(1).every((v) => /^exp3: highest smoothed loss on (prose|code|math) \(/.test(v.reason))).toBe(true);
    expect(html).toContain("Versions and why");
    expect(html).toContain(d.versions[1]!.reason);
    // Epochs consumed: samples served over the train split's size, per domain.
    expect(d.epochSamples).not.toBeNull();
    const served = d.served[d.served.length - 1]!;
    for (let s = 0; s < DOMAINS.length; s++) {
      expect(html).toContain(`<td class="num">${(served[s]! / d.epochSamples![s]!).toFixed(2)}</td>`);
    }
    // The realised share per window comes from the served counts; the planner's integer
    // counts track the weights, so each window is within a batch's rounding of the target.
    const batch = d.config.batchSize;
    const panels = sharePanels(d);
    expect(panels.map((p) => p.label)).toEqual([...DOMAINS]);
    for (const p of panels) {
      const [target, realised] = p.series;
      for (let k = 0; k < realised!.points.length; k++) {
        const r = realised!.points[k]![1];
        const t = target!.points[k]![1];
        expect(r).not.toBeNull();
        expect(Math.abs(r! - t!)).toBeLessThanOrEqual(1 / batch + 1e-9);
      }
    }
  });
});

describe("report data from the journal", () => {
  it("equals the run's versions, reported losses and planner counts", async () => {
    const d = await collectReport(rec.dataDir, RUN);
    expect(d.series).toEqual([...DOMAINS]);
    expect(d.lastStep).toBe(STEPS - 1);
    expect(d.signalCount).toBe(2 * STEPS);
    expect(d.versionCount).toBe(rec.versions.length);
    expect(d.versions.map((v) => [v.version, v.fromStep])).toEqual(rec.versions.map((v) => [v.id, v.fromStep]));
    d.versions.forEach((v, i) => v.weights.forEach((w, s) => expect(w).toBeCloseTo(rec.versions[i]!.weights[s]!, 12)));
    // Few steps: one bin per step, so the chart's values are the per-step reported means.
    expect(d.binWidth).toBe(1);
    for (let step = 0; step < STEPS; step++) {
      DOMAINS.forEach((_, s) => {
        const want = rec.driven.stepMeans[step]![s];
        if (want === null) expect(d.trainLoss[step]![s]).toBeNull();
        else expect(d.trainLoss[step]![s]).toBeCloseTo(want!, 9);
      });
    }
    expect(d.evalLoss.map((e) => e.step)).toEqual(Array.from({ length: Math.ceil(STEPS / 4) }, (_, i) => 4 * i));
    const lastEval = d.evalLoss[d.evalLoss.length - 1]!;
    DOMAINS.forEach((name, s) => expect(lastEval.values[s]).toBeCloseTo(rec.driven.evalLosses[name]!, 12));
    // Samples served, derived from the versions, equal the planner's and what the ranks received.
    expect(d.servedSteps[d.servedSteps.length - 1]).toBe(STEPS);
    expect(d.served[d.served.length - 1]).toEqual(rec.cumulative);
    expect(d.served[d.served.length - 1]).toEqual(rec.driven.samples);
    // The weights timeline: the step-function of the versions, bin by bin.
    for (let step = 0; step < d.endStep; step++) {
      const v = [...rec.versions].reverse().find((x) => x.fromStep <= step)!;
      v.weights.forEach((w, s) => expect(d.weights[step]![s]).toBeCloseTo(w, 12));
    }
  });

  it("accepts the data dir or its journal/ folder, and names the runs when the id is wrong", async () => {
    const a = await collectReport(rec.dataDir, RUN);
    const b = await collectReport(path.join(rec.dataDir, "journal"), RUN);
    expect(b).toEqual(a);
    await expect(collectReport(rec.dataDir, "nope")).rejects.toThrow(/run "nope" not found.*runs there: rep/);
    await expect(collectReport(rec.root, RUN)).rejects.toThrow(/no journal segments/);
  });
});

describe("mixflow report CLI", () => {
  it("writes a self-contained HTML and an SVG with one series per domain in every chart", () => {
    const html = path.join(rec.root, "out", "report.html");
    const svg = path.join(rec.root, "out", "report.svg");
    expect(cli(["report", "--journal", rec.dataDir, "--run", RUN, "-o", html]).status).toBe(0);
    const r = cli(["report", "--journal", path.join(rec.dataDir, "journal"), "--run", RUN, "-o", svg, "--format", "svg"]);
    expect(r.stderr).toContain("wrote");
    expect(r.status).toBe(0);
    for (const file of [html, svg]) {
      const text = fs.readFileSync(file, "utf8");
      expectCharts(seriesByChart(text));
      // Offline: nothing fetched at view time, no script to fail.
      expect(text).not.toMatch(/<script|<link|\b(src|href)=|url\(|@import/i);
    }
    const bad = cli(["report", "--journal", rec.dataDir, "--run", "nope", "-o", html]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('run "nope" not found');
  });
});

/** Headless Chromium with the flags from the brief; returns its stderr and the console lines it logged. */
function chromium(args: string[], url: string): { stdout: string; console: string[] } {
  const ud = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-chromium-"));
  try {
    const r = spawnSync(
      "chromium",
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${ud}`,
        "--enable-logging=stderr",
        "--v=0",
        ...args,
        url,
      ],
      { encoding: "utf8", timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
    );
    // Chromium logs every page console message (log, warning, error, uncaught exception) as CONSOLE.
    const consoleLines = r.stderr.split("\n").filter((l) => /:CONSOLE[:(]/.test(l));
    return { stdout: r.stdout, console: consoleLines };
  } finally {
    fs.rmSync(ud, { recursive: true, force: true });
  }
}

describe("report in headless Chromium", () => {
  it("detects console errors at all (control page; needs chromium)", () => {
    requireTool("chromium");
    const bad = path.join(rec.root, "bad.html");
    fs.writeFileSync(bad, "<!doctype html><p>x</p><script>console.error('control-error'); missing();</script>");
    const c = chromium(["--dump-dom"], `file://${bad}`);
    expect(c.console.join("\n")).toContain("control-error");
    expect(c.console.join("\n")).toContain("missing is not defined");
  });

  for (const format of ["html", "svg"] as const) {
    it(`renders the ${format} report: no console messages, not blank, one series per domain (needs chromium)`, async () => {
      requireTool("chromium");
      const d = path.join(rec.root, `chromium-${format}`);
      fs.mkdirSync(d, { recursive: true });
      const file = path.join(d, `report.${format}`);
      const rd = await collectReport(rec.dataDir, RUN);
      fs.writeFileSync(file, format === "html" ? renderHtml(rd) : renderSvg(rd));
      const png = path.join(d, "shot.png");
      const shot = chromium([`--screenshot=${png}`, "--window-size=1150,1600", "--hide-scrollbars"], `file://${file}`);
      expect(shot.console).toEqual([]);
      const px = decodePng(fs.readFileSync(png));
      expect(px.width).toBe(1150);
      // Four charts of filled areas and lines: a blank page would be ~0, a broken one a few %.
      expect(nonWhite(px) / (px.width * px.height)).toBeGreaterThan(0.1);
      expect(distinctColours(px)).toBeGreaterThan(10);
      const dom = chromium(["--dump-dom"], `file://${file}`);
      expect(dom.console).toEqual([]);
      // The DOM as the browser parsed it (not just our markup) has one series per domain per chart.
      expectCharts(seriesByChart(dom.stdout));
    });
  }
});

describe("long and compacted journals", () => {
  it("Bins merges adjacent bins when the run outgrows them", () => {
    const b = new Bins(4, 1);
    for (let s = 0; s < 10; s++) b.add(s, 0, s);
    expect(b.width).toBe(4);
    expect(b.means(3).map((r) => r[0])).toEqual([1.5, 5.5, 8.5]);
    const w = new Bins(4, 2);
    w.addRange(0, 3, [1, 0]);
    w.addRange(3, 8, [0, 1]);
    expect(w.width).toBe(2);
    expect(w.means(4)).toEqual([[1, 0], [0.5, 0.5], [0, 1], [0, 1]]);
  });

  it("bins 5000 steps, caps series as 'other', and reads a run that starts at a compacting checkpoint", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-report-long-"));
    try {
      const names = ["a", "b", "c", "d", "e"];
      const cfg = runConfig.parse({
        id: "long",
        batchSize: 10,
        domains: names.map((name) => ({ name, train: { format: "jsonl", paths: [`${name}.jsonl`] } })),
      });
      const k = names.length;
      const { journal } = await Journal.open({ dir, durability: "none" });
      const versionAt = (step: number): number[] => {
        const x = names.map((_, d) => 1 + ((d * 7 + Math.floor(step / 1000)) % 5));
        const t = x.reduce((p, q) => p + q, 0);
        return x.map((v) => v / t);
      };
      const sig = (step: number): SignalsEvent => ({
        runId: "long",
        step,
        offset: 0,
        slots: 10,
        hash: String(step),
        lossSum: names.map((_, d) => 2 * (d + 1) + step / 1000),
        count: names.map(() => 2),
        sampleLosses: null,
        refLossSum: null,
        evalLoss: null,
      });
      const events: RunEvent[] = [{ type: EventType.RunCreated, body: { runId: "long", config: cfg } }];
      const versions: { version: number; fromStep: number; weights: number[] }[] = [];
      for (let step = 0; step < 3000; step++) {
        if (step % 1000 === 0) {
          const v = { version: versions.length + 1, fromStep: step, weights: versionAt(step) };
          versions.push(v);
          events.push({ type: EventType.Version, body: { runId: "long", ...v, competence: null, reason: "test", committedAtStep: step - 1, strategyState: null } });
        }
        events.push({ type: EventType.Signals, body: sig(step) });
      }
      await journal.appendMany(events.map(encodeEvent));
      // Compaction: a snapshot with one pending signal (step 3000) whose record follows it.
      const pending = sig(3000);
      await journal.checkpoint(
        [
          encodeEvent({
            type: EventType.Snapshot,
            body: {
              runId: "long",
              config: cfg,
              state: "open",
              versions: versions.map((v) => ({ ...v, competence: null, reason: "test", committedAtStep: v.fromStep - 1 })),
              strategyState: null,
              lastAggregated: 2999,
              leasedUpTo: 3256,
              evalSteps: [],
              pending: [pending],
              recentHashes: [],
            },
          }),
        ],
        { dropOlder: true },
      );
      const more: RunEvent[] = [{ type: EventType.Signals, body: pending }];
      for (let step = 3001; step < 5000; step++) {
        if (step % 1000 === 0) {
          const v = { version: versions.length + 1, fromStep: step, weights: versionAt(step) };
          versions.push(v);
          more.push({ type: EventType.Version, body: { runId: "long", ...v, competence: null, reason: "test", committedAtStep: step - 1, strategyState: null } });
        }
        more.push({ type: EventType.Signals, body: sig(step) });
      }
      await journal.appendMany(more.map(encodeEvent));
      await journal.close();

      const d = await collectReport(dir, "long", { maxSeries: 3, bins: 64 });
      expect(d.series).toEqual(["a", "b", "other"]);
      // History before the checkpoint was dropped: signals from step 3000 on, once each.
      expect(d.signalCount).toBe(2000);
      expect(d.versionCount).toBe(4); // from steps 0, 1000, 2000 (in the snapshot) and 4000
      expect(d.lastStep).toBe(4999);
      expect(d.binWidth).toBe(128);
      expect(d.trainLoss.length).toBe(Math.ceil(5000 / 128));
      // Bin 30 = steps [3840, 3968). Domain d reports lossSum 2(d+1) + step/1000 over 2 samples:
      // "a" averages (2 + step/1000) / 2; "other" pools c, d, e (sums and counts, 6 samples).
      const mid = (3840 + 3967) / 2;
      expect(d.trainLoss[30]![0]).toBeCloseTo((2 + mid / 1000) / 2, 9);
      expect(d.trainLoss[30]![2]).toBeCloseTo((6 + 8 + 10 + (3 * mid) / 1000) / 6, 9);
      // The weights timeline comes from the snapshot's versions plus the later ones.
      expect(d.weights[0]![2]).toBeCloseTo(versionAt(0).slice(2).reduce((p, q) => p + q, 0), 12);
      expect(d.weights[38]![0]).toBeCloseTo(versionAt(4999)[0]!, 12);
      const ap = new Apportioner(k, 10);
      for (const v of versions) ap.addVersion(v);
      const want = Array.from(ap.cumulative(5000));
      expect(d.served[d.served.length - 1]).toEqual([want[0], want[1], want[2]! + want[3]! + want[4]!]);
      const charts = seriesByChart(renderHtml(d));
      for (const [chart, labels] of Object.entries(charts)) if (!chart.includes("-panels-")) expect(labels).toEqual(["a", "b", "other"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
