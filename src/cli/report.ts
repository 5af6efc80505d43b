/**
 * `mixflow report`: draw one run's weights timeline, per-domain losses and samples served
 * from the journal alone, as a self-contained HTML page or an SVG (see src/report/).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { collectReport } from "../report/collect.js";
import { renderHtml, renderSvg } from "../report/render.js";
import { progress } from "../util/progress.js";

export const REPORT_HELP = `mixflow report --journal DIR --run ID [-o FILE] [--format html|svg]

  --journal DIR       the server's data dir, or its journal/ folder
  --run ID            the run to draw
  -o, --output FILE   where to write (default report.html / report.svg; "-" for stdout)
  --format FMT        html (default; self-contained, opens offline) or svg;
                      inferred from the output's extension when not given
  --max-series N      domains drawn separately at most (default 24; the rest as "other")
`;

export async function reportCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      journal: { type: "string" },
      run: { type: "string" },
      output: { type: "string", short: "o" },
      format: { type: "string" },
      "max-series": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(REPORT_HELP);
    return;
  }
  if (!values.journal || !values.run) throw new Error(`report needs --journal and --run\n\n${REPORT_HELP}`);
  const format = values.format ?? (values.output?.toLowerCase().endsWith(".svg") ? "svg" : "html");
  if (format !== "html" && format !== "svg") throw new Error(`--format must be html or svg, got "${format}"`);
  const maxSeries = values["max-series"] === undefined ? 24 : Number(values["max-series"]);
  if (!Number.isInteger(maxSeries) || maxSeries < 1) throw new Error(`--max-series must be a positive integer, got "${values["max-series"]}"`);
  const out = values.output ?? `report.${format}`;

  const p = progress("reading journal");
  const data = await collectReport(values.journal, values.run, { maxSeries, onProgress: (d, t) => p.update(d, t) });
  p.done();
  const text = format === "svg" ? renderSvg(data) : renderHtml(data);
  if (out === "-") {
    process.stdout.write(text);
    return;
  }
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, text);
  process.stderr.write(`wrote ${out} (${format}, run "${data.runId}", ${data.versionCount} versions, last step ${data.lastStep})\n`);
}
