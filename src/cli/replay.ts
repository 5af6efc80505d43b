/**
 * `mixflow replay …`: offline work on a recorded run, from its journal alone.
 *
 *   export     per-step composition (JSONL/CSV) and the weights timeline (CSV)
 *   serve      a run config that re-serves the recorded batches bit for bit
 *   transfer   a run config whose schedule is the recorded versions (or their average)
 *   simulate   run any strategy over the recorded signals; write its weights timeline
 *   verify     recompute every served step's digest and compare with the recorded one;
 *              with --data also re-read the data and compare the served payloads' digests
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { runConfig, type RunConfig } from "../config/schema.js";
import { parseJson, parseOrThrow } from "../config/validate.js";
import { MixflowClient } from "../client/index.js";
import { replayServeConfig, transferConfig } from "../replay/configs.js";
import { exportComposition, weightsTimelineCsv } from "../replay/export.js";
import { readHistory } from "../replay/history.js";
import { simulate, simulatedCsv } from "../replay/simulate.js";
import { verifyContent, verifyDigests, type ContentReport } from "../replay/verify.js";
import { declaresDifficulty, difficultyOrders } from "../replay/difficulty.js";
import { withRunData } from "../replay/data.js";
import type { RunHistory } from "../replay/history.js";
import { checkDataFingerprint, dataChangedMessage, type Source } from "../sources/index.js";

export const REPLAY_HELP = `mixflow replay <export|serve|transfer|simulate|verify> --journal DIR --run ID [options]

  --journal DIR    the server's data dir (or its journal/ folder); no server needed
  --run ID         the recorded run

  export   -o FILE [--format jsonl|csv] [--from N] [--to N] [--world-size W] [--weights FILE.csv]
  serve    --as NEW_ID [-o run.json] [--server HOST:PORT]   re-serve the recorded batches exactly
  transfer --as NEW_ID [--average] [--target run.json] [--step-scale F] [-o run.json] [--server HOST:PORT]
  simulate --strategy NAME [--params JSON] -o weights.csv    counterfactual weights timeline
  verify [--data]  compare recorded and recomputed batch digests; --data also re-reads the
                   data and compares each step's recorded payload digests, per domain

  --base-dir DIR   what the run's relative data paths resolve against (default: the current
                   folder); export and verify read the data of curriculum runs (difficulty order)
`;

const OPTIONS = {
  journal: { type: "string" },
  run: { type: "string" },
  out: { type: "string", short: "o" },
  format: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  "world-size": { type: "string" },
  weights: { type: "string" },
  as: { type: "string" },
  server: { type: "string" },
  average: { type: "boolean" },
  target: { type: "string" },
  "step-scale": { type: "string" },
  strategy: { type: "string" },
  params: { type: "string" },
  "base-dir": { type: "string" },
  data: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function need<T>(v: T | undefined, flag: string): T {
  if (v === undefined || v === "") throw new Error(`missing --${flag}\n\n${REPLAY_HELP}`);
  return v;
}

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} must be a non-negative integer, got "${v}"`);
  return n;
}

async function emitConfig(cfg: RunConfig, out: string | undefined, server: string | undefined): Promise<void> {
  const text = JSON.stringify(cfg, null, 2) + "\n";
  if (out) fs.writeFileSync(out, text);
  if (server) {
    const c = new MixflowClient(server);
    try {
      const info = await c.createRun(cfg);
      process.stdout.write(`created run "${info.runId}" on ${server}\n`);
    } finally {
      c.close();
    }
  }
  if (!out && !server) process.stdout.write(text);
}

export async function replayCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v } = parseArgs({ args: rest, options: OPTIONS, strict: true });
  if (!sub || v.help || sub === "--help" || sub === "-h") {
    process.stdout.write(REPLAY_HELP);
    return;
  }
  const h = await readHistory(need(v.journal, "journal"), need(v.run, "run"));
  switch (sub) {
    case "export": {
      const format = (v.format ?? "jsonl") as "jsonl" | "csv";
      if (format !== "jsonl" && format !== "csv") throw new Error(`--format must be jsonl or csv, got "${format}"`);
      const rows = await exportComposition(h, need(v.out, "out"), {
        format,
        from: int(v.from, "from"),
        to: int(v.to, "to"),
        worldSize: int(v["world-size"], "world-size"),
        difficultyOrders: difficultyOrders(h, path.resolve(v["base-dir"] ?? ".")),
      });
      if (v.weights) fs.writeFileSync(v.weights, weightsTimelineCsv(h));
      process.stdout.write(`wrote ${rows} slots to ${v.out}${v.weights ? ` and the weights timeline to ${v.weights}` : ""}\n`);
      return;
    }
    case "serve":
      await emitConfig(replayServeConfig(h, need(v.as, "as")), v.out, v.server);
      return;
    case "transfer": {
      const target = v.target ? parseOrThrow(runConfig, parseJson(fs.readFileSync(v.target, "utf8"), v.target), v.target) : undefined;
      const scale = v["step-scale"] !== undefined ? Number(v["step-scale"]) : undefined;
      if (scale !== undefined && !(scale > 0)) throw new Error(`--step-scale must be a positive number`);
      const cfg = transferConfig(h, { newId: need(v.as, "as"), mode: v.average ? "average" : "schedule", target, stepScale: scale });
      await emitConfig(cfg, v.out, v.server);
      return;
    }
    case "simulate": {
      const params = v.params ? parseJson(v.params, "--params") : {};
      const vs = simulate(h, need(v.strategy, "strategy"), params);
      fs.writeFileSync(need(v.out, "out"), simulatedCsv(h, vs));
      process.stdout.write(`${vs.length} versions over ${h.aggregated.length} aggregated steps written to ${v.out}\n`);
      return;
    }
    case "verify": {
      // The data first: digests recomputed from the versions cannot see changed files.
      const changed = h.data ? checkDataFingerprint(h.data) : [];
      if (changed.length > 0) {
        process.stdout.write(`MISMATCH: ${dataChangedMessage(h.runId, changed)}\n`);
        process.exitCode = 1;
        // Without --data that is all there is to say; with it, the content check names the steps.
        if (!v.data) return;
      }
      if (!h.data) process.stdout.write(`note: run "${h.runId}" was journaled without data fingerprints (an older mixflow); its data files are not checked\n`);
      const baseDir = path.resolve(v["base-dir"] ?? ".");
      if (v.data) {
        withRunData(h, baseDir, (domains) => {
          const orders = declaresDifficulty(h) ? domains.map((d) => d.plan.difficultyOrder) : undefined;
          reportDigests(h, orders);
          reportContent(h, domains.map((d) => d.train), orders);
        });
        return;
      }
      reportDigests(h, difficultyOrders(h, baseDir));
      return;
    }
    default:
      throw new Error(`unknown replay command "${sub}"\n\n${REPLAY_HELP}`);
  }
}

function reportDigests(h: RunHistory, orders: (Uint32Array | null)[] | undefined): void {
  const r = verifyDigests(h, orders);
  if (r.mismatches.length === 0) {
    process.stdout.write(`ok: ${r.checked} steps, every recomputed batch digest matches the recorded one\n`);
    return;
  }
  const m = r.mismatches[0]!;
  process.stdout.write(`MISMATCH: ${r.mismatches.length} of ${r.checked} steps differ; first at step ${m.step} (recorded ${m.recorded}, replayed ${m.replayed})\n`);
  process.exitCode = 1;
}

/** `verify --data`: the served payloads' digests against the data as it is now. */
function reportContent(h: RunHistory, train: readonly Source[], orders: (Uint32Array | null)[] | undefined): void {
  // A domain whose sample count changed cannot be re-assembled at the recorded indices.
  const resized = (h.domains ?? []).flatMap((d, i) => (train[i]!.size !== d.trainSamples ? [`"${d.name}" has ${train[i]!.size} train samples now, ${d.trainSamples} recorded`] : []));
  if (resized.length > 0) {
    process.stdout.write(`MISMATCH: the data changed size: ${resized.join("; ")}; the served content cannot be compared\n`);
    process.exitCode = 1;
    return;
  }
  const r: ContentReport = verifyContent(h, train, orders);
  if (r.checked === 0) {
    process.stdout.write(`note: run "${h.runId}" has no content digests recorded (journaled by an older mixflow, or no step aggregated since); the payload bytes are not checked\n`);
    return;
  }
  if (r.mismatches.length === 0) {
    process.stdout.write(`ok: ${r.checked} steps, every served payload digest matches the data\n`);
    return;
  }
  const shown = r.mismatches.slice(0, 5).map((m) => `step ${m.step} (domain ${m.domains.map((d) => `"${d}"`).join(", ")})`);
  process.stdout.write(
    `MISMATCH: the served content of ${r.mismatches.length} of ${r.checked} steps differs from the data now: ${shown.join(", ")}${r.mismatches.length > 5 ? ", …" : ""}; ` +
      `restore the data the run was served from, or treat the run's history as not reproducible\n`,
  );
  process.exitCode = 1;
}
