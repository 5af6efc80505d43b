/**
 * The report as a picture: a self-contained HTML page (inline SVG and CSS, no script, no
 * network at view time) or one standalone SVG with the same charts.
 */
import type { ReportData } from "./collect.js";
import { esc, lines, stackedArea, STYLE, type Frame, type LineSeries, type Marker } from "./svg.js";

/** Version markers are drawn only up to this many versions (beyond, even the rug is a solid bar). */
const MAX_DRAWN_MARKERS = 1000;

/** Drawing width: the HTML scales it to the page width (viewBox), the SVG keeps it. */
const WIDTH = 1360;
const PLOT = { x: 80, width: 1080, height: 260 };
const CHART_HEIGHT = PLOT.height + 100;
/** Small multiples: one panel per domain, each on its own y scale. */
const PANEL = { height: 130, gapX: 70, gapY: 78, cols: 4 };

interface Chart {
  readonly id: string;
  /** Height in drawing units (a single chart: CHART_HEIGHT; a panel grid: more). */
  readonly height: number;
  readonly svg: (f: Frame) => string;
}

export interface Panel {
  readonly label: string;
  readonly series: LineSeries[];
}

/**
 * One small chart per domain, each fitted to its own values: a noisy domain's loss of ~10
 * no longer flattens the others, and near-equal domains are not drawn on top of each other.
 */
function panelGrid(id: string, title: string, yLabel: string, x1: number, panels: readonly Panel[], fromZero = false): Chart {
  const cols = Math.min(PANEL.cols, Math.max(1, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const width = (PLOT.width + 180 - (cols - 1) * PANEL.gapX) / cols;
  return {
    id,
    height: 30 + rows * (PANEL.height + PANEL.gapY),
    svg: (f) => {
      const parts = [`<text x="${f.x}" y="${f.y - 12}" class="title">${esc(title)}</text>`];
      panels.forEach((p, i) => {
        const frame = {
          x: f.x + (i % cols) * (width + PANEL.gapX),
          y: f.y + 24 + Math.floor(i / cols) * (PANEL.height + PANEL.gapY),
          width,
          height: PANEL.height,
        };
        parts.push(lines(frame, { chart: `${id}-${p.label}`, title: p.label, yLabel, x0: 0, x1, series: p.series, legend: [], fromZero }));
      });
      return `<g class="panels" id="${esc(id)}">${parts.join("")}</g>`;
    },
  };
}

/** Realised share per window (from the served counts) against the target weight in force. */
export function sharePanels(d: ReportData): Panel[] {
  if (d.servedSteps.length < 2) return [];
  const windows = Math.min(60, d.servedSteps.length - 1);
  const at = Array.from({ length: windows + 1 }, (_, k) => Math.round((k * (d.servedSteps.length - 1)) / windows));
  return d.series.map((label, s) => {
    const realised: [number, number | null][] = [];
    const target: [number, number | null][] = [];
    for (let k = 0; k < windows; k++) {
      const [i, j] = [at[k]!, at[k + 1]!];
      const total = d.served[j]!.reduce((a, b) => a + b, 0) - d.served[i]!.reduce((a, b) => a + b, 0);
      const mid = (d.servedSteps[i]! + d.servedSteps[j]! - 1) / 2;
      realised.push([mid, total > 0 ? (d.served[j]![s]! - d.served[i]![s]!) / total : null]);
      const row = d.weights[Math.min(d.weights.length - 1, Math.floor(mid / d.binWidth))];
      target.push([mid, row ? row[s]! / row.reduce((a, b) => a + b, 0) : null]);
    }
    return {
      label,
      series: [
        { label: `${label} target`, index: s, points: target },
        { label: `${label} realised`, index: s, points: realised, dashed: true, dots: windows <= 60 },
      ],
    };
  });
}

function versionMarkers(d: ReportData): Marker[] {
  if (d.versionCount > MAX_DRAWN_MARKERS) return [];
  return d.versions.slice(1).map((v) => ({
    x: v.fromStep,
    title: `version ${v.version} from step ${v.fromStep} (${v.reason})`,
  }));
}

function charts(d: ReportData): Chart[] {
  const edges: number[] = [];
  for (let i = 0; i <= d.weights.length; i++) edges.push(Math.min(i * d.binWidth, d.endStep));
  const centre = (i: number): number => Math.min(i * d.binWidth + (d.binWidth - 1) / 2, d.endStep - 1);
  const ms = versionMarkers(d);
  const out: Chart[] = [
    {
      id: "weights",
      height: CHART_HEIGHT,
      svg: (f) =>
        stackedArea(f, {
          chart: "weights",
          title: `Domain weights (${d.versionCount} version${d.versionCount === 1 ? "" : "s"}; marks: where new versions take effect)`,
          labels: d.series,
          edges,
          values: d.weights,
          markers: ms,
        }),
    },
    {
      id: "train-loss",
      height: CHART_HEIGHT,
      svg: (f) =>
        lines(f, {
          chart: "train-loss",
          title: `Training loss per domain (reported; mean per ${d.binWidth === 1 ? "step" : `${d.binWidth} steps`})`,
          yLabel: "loss",
          x0: 0,
          x1: d.endStep,
          series: d.series.map<LineSeries>((label, s) => ({ label, index: s, points: d.trainLoss.map((row, i) => [centre(i), row[s] ?? null] as const) })),
          legend: d.series,
          markers: ms,
        }),
    },
    panelGrid(
      "train-loss-panels",
      "Training loss, one panel per domain (each on its own scale)",
      "loss",
      d.endStep,
      d.series.map((label, s) => ({ label, series: [{ label, index: s, points: d.trainLoss.map((row, i) => [centre(i), row[s] ?? null] as const) }] })),
    ),
  ];
  const shares = sharePanels(d);
  if (shares.length > 0) {
    out.push(panelGrid("share-panels", "Did I get the mix I asked for? Realised share per window (dashed) against the target weight (solid)", "share", d.endStep, shares, true));
  }
  if (d.evalLoss.length > 0) {
    out.push({
      id: "eval-loss",
      height: CHART_HEIGHT,
      svg: (f) =>
        lines(f, {
          chart: "eval-loss",
          title: "Eval loss per domain (reported)",
          yLabel: "loss",
          x0: 0,
          x1: d.endStep,
          series: d.series.map<LineSeries>((label, s) => ({
            label,
            index: s,
            dashed: true,
            dots: d.evalLoss.length <= 200,
            points: d.evalLoss.filter((e) => e.values[s] !== null).map((e) => [e.step, e.values[s]!] as const),
          })),
          legend: d.series,
          markers: ms,
        }),
    });
  }
  if (d.servedSteps.length > 0) {
    out.push({
      id: "served",
      height: CHART_HEIGHT,
      svg: (f) =>
        lines(f, {
          chart: "served",
          title: `Samples served per domain (cumulative, through step ${d.lastStep})`,
          yLabel: "samples",
          x0: 0,
          x1: d.endStep,
          fromZero: true,
          series: d.series.map<LineSeries>((label, s) => ({ label, index: s, points: d.servedSteps.map((st, i) => [st, d.served[i]![s]!] as const) })),
          legend: d.series,
        }),
    });
  }
  return out;
}

function summaryRows(d: ReportData): [string, string][] {
  const c = d.config;
  return [
    ["run", d.runId],
    ["state", d.state],
    ["strategy", c.strategy.name],
    ["domains", `${c.domains.length}${d.series.length < c.domains.length ? ` (charts: ${d.series.length - 1} + "other")` : ""}`],
    ["batch size × world size", `${c.batchSize} × ${c.worldSize}`],
    ["seed", String(c.seed)],
    ["last reported step", d.lastStep < 0 ? "none" : String(d.lastStep)],
    ["versions", String(d.versionCount)],
    ["signal reports", String(d.signalCount)],
  ];
}

function finalTable(d: ReportData): string {
  const last = d.versions[d.versions.length - 1];
  const served = d.served[d.served.length - 1];
  const total = served ? served.reduce((a, b) => a + b, 0) : 0;
  const rows = d.series.map((label, s) => {
    const w = last ? `${(last.weights[s]! * 100).toFixed(2)}%` : "";
    const n = served ? `${served[s]!.toLocaleString("en-US")} (${total > 0 ? ((100 * served[s]!) / total).toFixed(1) : "0"}%)` : "";
    const epochs = served && d.epochSamples && d.epochSamples[s]! > 0 ? (served[s]! / d.epochSamples[s]!).toFixed(2) : "";
    return `<tr><td>${esc(label)}</td><td>${w}</td><td>${n}</td><td class="num">${epochs}</td></tr>`;
  });
  const lastNote = d.versionCount > d.versions.length ? ` (of the first ${d.versions.length} versions)` : "";
  return `<table><thead><tr><th>domain</th><th>latest weight${lastNote}</th><th>samples served</th><th title="samples served / samples in one epoch of the train split: above 1, the domain repeats">epochs consumed</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** Versions with the strategy's reason: the first and the last ones when there are many. */
function versionTable(d: ReportData): string {
  const vs = d.versions;
  const shown = vs.length <= 30 ? vs : [...vs.slice(0, 10), null, ...vs.slice(-20)];
  const rows = shown.map((v) => {
    if (!v) return `<tr><td colspan="4" class="note">… ${vs.length - 30} versions …</td></tr>`;
    const prev = vs[vs.indexOf(v) - 1];
    const moved = prev
      ? d.series
          .map((label, s) => ({ label, delta: v.weights[s]! - prev.weights[s]! }))
          .sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta))
          .slice(0, 2)
          .filter((m) => Math.abs(m.delta) >= 0.0005)
          .map((m) => `${m.label} ${m.delta > 0 ? "+" : ""}${(m.delta * 100).toFixed(1)} pt`)
          .join(", ")
      : "";
    return `<tr><td class="num">${v.version}</td><td class="num">${v.fromStep}</td><td>${esc(v.reason)}</td><td>${esc(moved)}</td></tr>`;
  });
  return `<h2>Versions and why</h2><table class="versions"><thead><tr><th>version</th><th>from step</th><th>reason (the strategy's words)</th><th>largest weight changes</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export function renderHtml(d: ReportData): string {
  const cs = charts(d);
  const svgs = cs
    .map(
      (c) =>
        `<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${c.height}" width="100%" preserveAspectRatio="xMinYMin meet" role="img">${c.svg({ x: PLOT.x, y: 40, width: PLOT.width, height: PLOT.height })}</svg></figure>`,
    )
    .join("\n");
  const summary = summaryRows(d)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join("");
  const markerNote = d.versionCount > MAX_DRAWN_MARKERS ? `<p class="note">${d.versionCount} versions: markers not drawn above ${MAX_DRAWN_MARKERS}.</p>` : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mixflow report: ${esc(d.runId)}</title>
<style>
body{font:14px system-ui,sans-serif;color:#222;margin:24px;background:#fff}
h1{font-size:20px;margin:0 0 12px}
table{border-collapse:collapse;margin:0 24px 16px 0;display:inline-table;vertical-align:top}
th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #eee}
thead th{border-bottom:1px solid #bbb}
figure{margin:8px 0;max-width:1800px}
h2{font-size:16px;margin:16px 0 6px}
.num{text-align:right;font-variant-numeric:tabular-nums}
table.versions{display:table;max-width:1800px}
.note{color:#666}
${STYLE}
</style>
</head>
<body>
<h1>mixflow report — run ${esc(d.runId)}</h1>
<table class="summary"><tbody>${summary}</tbody></table>
${finalTable(d)}
${markerNote}
${svgs}
${versionTable(d)}
<p class="note">Generated from the journal alone (${d.records.toLocaleString("en-US")} records). Samples served are derived from the committed versions (the batch of a step is a pure function of them) up to the last reported step.</p>
</body>
</html>
`;
}

export function renderSvg(d: ReportData): string {
  const cs = charts(d);
  const head = 50;
  const height = head + cs.reduce((a, c) => a + c.height, 0);
  let y = head;
  const body = cs
    .map((c) => {
      const svg = c.svg({ x: PLOT.x, y: y + 40, width: PLOT.width, height: PLOT.height });
      y += c.height;
      return svg;
    })
    .join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}">
<style>${STYLE}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="${PLOT.x}" y="30" class="title" style="font-size:18px">mixflow report — run ${esc(d.runId)} (${esc(d.config.strategy.name)}, ${d.versionCount} versions, last step ${d.lastStep})</text>
${body}
</svg>
`;
}
