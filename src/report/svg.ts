/**
 * Minimal SVG charts for the report, generated as strings: a stacked-area chart and a
 * line chart with axes, ticks, a legend and vertical markers.
 *
 * Why hand-written rather than a charting library: the report must open offline from a
 * single file, and the charts needed here are three simple shapes; inlining a library
 * would add hundreds of kilobytes and a dependency to keep current, and a script that can
 * fail at view time. Plain SVG also renders in the `--format svg` output, where no script
 * would run at all. Every series is one element carrying `data-chart` and `data-series`
 * attributes, so tests (and users' scripts) can find them.
 */

export interface Frame {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Tableau 10: distinguishable, colour-blind friendlier than HSL steps; then golden-angle hues. */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

export function colour(i: number, label: string): string {
  if (label === "other" || label === "~other") return "#9e9e9e";
  if (i < PALETTE.length) return PALETTE[i]!;
  return `hsl(${Math.round((i * 137.508) % 360)}, 55%, 50%)`;
}

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Rounded to 3 decimals: keeps files small, far below a pixel. */
function r(v: number): string {
  return (Math.round(v * 1000) / 1000).toString();
}

/** About `n` "nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${r(v / 1e6)}M`;
  if (a >= 1e4) return `${r(v / 1e3)}k`;
  if (a >= 1) return r(v);
  return v.toPrecision(2);
}

interface Axes {
  readonly f: Frame;
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
}

function sx(a: Axes, v: number): number {
  return a.f.x + ((v - a.x0) / (a.x1 - a.x0 || 1)) * a.f.width;
}

function sy(a: Axes, v: number): number {
  return a.f.y + a.f.height - ((v - a.y0) / (a.y1 - a.y0 || 1)) * a.f.height;
}

function axes(a: Axes, title: string, xLabel: string, yLabel: string, yFormat: (v: number) => string = fmt): string {
  const { f } = a;
  const parts: string[] = [];
  parts.push(`<text x="${r(f.x)}" y="${r(f.y - 12)}" class="title">${esc(title)}</text>`);
  for (const t of ticks(a.y0, a.y1)) {
    const y = sy(a, t);
    parts.push(`<line x1="${r(f.x)}" x2="${r(f.x + f.width)}" y1="${r(y)}" y2="${r(y)}" class="grid"/>`);
    parts.push(`<text x="${r(f.x - 6)}" y="${r(y + 4)}" class="tick" text-anchor="end">${esc(yFormat(t))}</text>`);
  }
  // The x axis is always steps: whole numbers only (a 1-step run would get 0.2, 0.4, …).
  for (const t of ticks(a.x0, a.x1, 8).filter((v) => Number.isInteger(v))) {
    const x = sx(a, t);
    parts.push(`<line x1="${r(x)}" x2="${r(x)}" y1="${r(f.y + f.height)}" y2="${r(f.y + f.height + 4)}" class="axis"/>`);
    parts.push(`<text x="${r(x)}" y="${r(f.y + f.height + 16)}" class="tick" text-anchor="middle">${esc(fmt(t))}</text>`);
  }
  parts.push(`<rect x="${r(f.x)}" y="${r(f.y)}" width="${r(f.width)}" height="${r(f.height)}" class="frame"/>`);
  parts.push(`<text x="${r(f.x + f.width / 2)}" y="${r(f.y + f.height + 32)}" class="label" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(
    `<text transform="translate(${r(f.x - 46)},${r(f.y + f.height / 2)}) rotate(-90)" class="label" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  return parts.join("");
}

function legend(f: Frame, labels: readonly string[]): string {
  const parts: string[] = [];
  let x = f.x + f.width + 14;
  let y = f.y + 4;
  for (let i = 0; i < labels.length; i++) {
    if (y > f.y + f.height) {
      y = f.y + 4;
      x += 110;
    }
    parts.push(`<rect x="${r(x)}" y="${r(y)}" width="10" height="10" fill="${colour(i, labels[i]!)}"/>`);
    parts.push(`<text x="${r(x + 14)}" y="${r(y + 9)}" class="legend">${esc(labels[i]!)}</text>`);
    y += 16;
  }
  return parts.join("");
}

/** Up to this many version markers are drawn as full lines. */
export const FULL_MARKERS = 40;

export interface Marker {
  readonly x: number;
  readonly title: string;
}

/**
 * Version markers: full-height dashed lines while there are few (readable), a rug of short
 * ticks along the top edge when there are many (a version per step would grey the chart).
 */
function markers(a: Axes, ms: readonly Marker[]): string {
  const shown = ms.filter((m) => m.x >= a.x0 && m.x <= a.x1);
  const full = shown.length <= FULL_MARKERS;
  return shown
    .map((m) => {
      const x = r(sx(a, m.x));
      const y2 = full ? a.f.y + a.f.height : a.f.y + 6;
      return `<line x1="${x}" x2="${x}" y1="${r(a.f.y)}" y2="${r(y2)}" class="${full ? "marker" : "rug"}"><title>${esc(m.title)}</title></line>`;
    })
    .join("");
}

export interface StackedInput {
  readonly chart: string;
  readonly title: string;
  readonly labels: readonly string[];
  /** Bin edges in steps: bin i spans [edges[i], edges[i+1]). */
  readonly edges: readonly number[];
  /** Per bin, per series; null bins are left empty. */
  readonly values: readonly (readonly number[] | null)[];
  readonly markers?: readonly Marker[];
}

/** Stacked areas normalised to 1 per bin, drawn as steps (weights are constant inside a version). */
export function stackedArea(f: Frame, inp: StackedInput): string {
  const a: Axes = { f, x0: inp.edges[0] ?? 0, x1: inp.edges[inp.edges.length - 1] ?? 1, y0: 0, y1: 1 };
  const k = inp.labels.length;
  const paths: string[] = [];
  for (let s = 0; s < k; s++) {
    // One path per series; each run of non-null bins is one closed sub-path.
    let d = "";
    let upper: string[] = [];
    let lower: string[] = [];
    const flush = (): void => {
      if (upper.length) d += `M${upper.join("L")}L${lower.reverse().join("L")}Z`;
      upper = [];
      lower = [];
    };
    inp.values.forEach((row, i) => {
      if (!row) return flush();
      const total = row.reduce((x, y) => x + y, 0) || 1;
      let below = 0;
      for (let j = 0; j < s; j++) below += row[j]!;
      const lo = below / total;
      const hi = (below + row[s]!) / total;
      const xa = r(sx(a, inp.edges[i]!));
      const xb = r(sx(a, inp.edges[i + 1]!));
      upper.push(`${xa},${r(sy(a, hi))}`, `${xb},${r(sy(a, hi))}`);
      lower.push(`${xa},${r(sy(a, lo))}`, `${xb},${r(sy(a, lo))}`);
    });
    flush();
    paths.push(
      `<path d="${d}" fill="${colour(s, inp.labels[s]!)}" class="area" data-chart="${esc(inp.chart)}" data-series="${esc(inp.labels[s]!)}"><title>${esc(inp.labels[s]!)}</title></path>`,
    );
  }
  return `<g class="chart" id="${esc(inp.chart)}">${axes(a, inp.title, "step", "weight share", (v) => `${Math.round(v * 100)}%`)}${paths.join("")}${markers(a, inp.markers ?? [])}${legend(f, inp.labels)}</g>`;
}

export interface LineSeries {
  readonly label: string;
  /** Colour index (so one domain has one colour in every chart). */
  readonly index: number;
  readonly points: readonly (readonly [number, number | null])[];
  readonly dashed?: boolean;
  readonly dots?: boolean;
}

export interface LinesInput {
  readonly chart: string;
  readonly title: string;
  readonly yLabel: string;
  readonly x0: number;
  readonly x1: number;
  readonly series: readonly LineSeries[];
  readonly legend: readonly string[];
  readonly markers?: readonly Marker[];
  /** Start the y axis at 0 (counts) instead of fitting the data (losses). */
  readonly fromZero?: boolean;
}

/** Line chart; null values break the line. */
export function lines(f: Frame, inp: LinesInput): string {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of inp.series) for (const [, y] of s.points) if (y !== null) ((lo = Math.min(lo, y)), (hi = Math.max(hi, y)));
  if (lo === Infinity) ((lo = 0), (hi = 1));
  if (inp.fromZero) lo = 0;
  if (hi === lo) hi = lo + 1;
  const pad = inp.fromZero ? 0 : (hi - lo) * 0.05;
  const a: Axes = { f, x0: inp.x0, x1: inp.x1 > inp.x0 ? inp.x1 : inp.x0 + 1, y0: lo - pad, y1: hi + pad };
  const out: string[] = [];
  for (const s of inp.series) {
    const c = colour(s.index, s.label);
    let d = "";
    let pen = false;
    const dots: string[] = [];
    for (const [x, y] of s.points) {
      if (y === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${r(sx(a, x))},${r(sy(a, y))}`;
      pen = true;
      if (s.dots) dots.push(`<circle cx="${r(sx(a, x))}" cy="${r(sy(a, y))}" r="2.5" fill="${c}"/>`);
    }
    out.push(
      `<g data-chart="${esc(inp.chart)}" data-series="${esc(s.label)}" class="line"><path d="${d}" stroke="${c}" fill="none" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>${dots.join("")}<title>${esc(s.label)}</title></g>`,
    );
  }
  return `<g class="chart" id="${esc(inp.chart)}">${axes(a, inp.title, "step", inp.yLabel)}${out.join("")}${markers(a, inp.markers ?? [])}${legend(f, inp.legend)}</g>`;
}

export const STYLE = `
.title{font:600 14px system-ui,sans-serif;fill:#222}
.tick{font:11px system-ui,sans-serif;fill:#555}
.label{font:12px system-ui,sans-serif;fill:#333}
.legend{font:12px system-ui,sans-serif;fill:#222}
.grid{stroke:#e6e6e6;stroke-width:1}
.axis{stroke:#888}
.frame{fill:none;stroke:#999}
.marker{stroke:#222;stroke-opacity:.35;stroke-dasharray:2 3;stroke-width:1}
.rug{stroke:#222;stroke-width:1}
.area{stroke:none}
`;
