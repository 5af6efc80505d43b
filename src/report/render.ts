/**
 * The report as a picture: a self-contained HTML page (inline SVG and CSS, no script, no
 * network at view time) or one standalone SVG with the same charts.
 */
import type { ReportData } from "./collect.js";
import { esc, lines, stackedArea, STYLE, type Frame, type LineSeries, type Marker } from "./svg.js";

/** Version markers are drawn only up to this many versions (beyond, even the rug is a solid bar). */
const MAX_DRAWN_MARKERS = 1000;

const WIDTH = 1100;
const PLOT = { x: 80, width: 820, height: 260 };
const CHART_HEIGHT = PLOT.height + 100;

interface Chart {
  readonly id: string;
  readonly svg: (f: Frame) => string;
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
  ];
  if (d.evalLoss.length > 0) {
    out.push({
      id: "eval-loss",
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
    return `<tr><td>${esc(label)}</td><td>${w}</td><td>${n}</td></tr>`;
  });
  const lastNote = d.versionCount > d.versions.length ? ` (of the first ${d.versions.length} versions)` : "";
  return `<table><thead><tr><th>domain</th><th>latest weight${lastNote}</th><th>samples served</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export function renderHtml(d: ReportData): string {
  const cs = charts(d);
  const svgs = cs
    .map(
      (c) =>
        `<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${CHART_HEIGHT}" width="${WIDTH}" height="${CHART_HEIGHT}" role="img">${c.svg({ x: PLOT.x, y: 40, width: PLOT.width, height: PLOT.height })}</svg></figure>`,
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
figure{margin:8px 0}
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
<p class="note">Generated from the journal alone (${d.records.toLocaleString("en-US")} records). Samples served are derived from the committed versions (the batch of a step is a pure function of them) up to the last reported step.</p>
</body>
</html>
`;
}

export function renderSvg(d: ReportData): string {
  const cs = charts(d);
  const head = 50;
  const height = head + cs.length * CHART_HEIGHT;
  const body = cs
    .map((c, i) => c.svg({ x: PLOT.x, y: head + i * CHART_HEIGHT + 40, width: PLOT.width, height: PLOT.height }))
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
