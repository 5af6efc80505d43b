/**
 * End to end through a real Prometheus: a mixflow server on loopback serves a two-rank
 * run through real grpc-js clients, Prometheus scrapes its /metrics every second, and the
 * values Prometheus stored (read back through its HTTP query API) equal the run's own
 * state: GetWeights, the planner's per-domain counts, and the losses the trainer reported.
 * That covers what a unit test of the exposition cannot: the text parses for the real
 * scraper, labels survive, and the series names are queryable as documented.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { LOSS_EMA_ALPHA } from "../../src/metrics/index.js";
import { DOMAINS, driveRun, expectedEma, startServer, type Started } from "./helpers.js";
import { requireTool } from "../helpers/tools.js";

const RUN = "prom";
const STEPS = 10;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, q: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: Sample[] } };
  if (body.status !== "success") throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Poll `fn` until it returns true or `ms` pass. */
async function until(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // Prometheus not up yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Per-domain values of an instant query, by domain label. */
async function byDomain(base: string, q: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await query(base, q)) out[s.metric.domain!] = Number(s.value[1]);
  return out;
}

describe("Prometheus scrapes what the run did", () => {
  let s: Started | null = null;
  let prom: ChildProcess | null = null;

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once("exit", r));
      prom.kill("SIGTERM");
      await exited;
    }
    await s?.stop();
    if (s) fs.rmSync(s.root, { recursive: true, force: true });
  });

  it("weights, samples served and losses equal the run's own state (needs prometheus on PATH)", async () => {
    requireTool("prometheus");
    s = await startServer(RUN);
    const port = await freePort();
    const promDir = path.join(s.root, "prometheus");
    fs.mkdirSync(promDir);
    fs.writeFileSync(
      path.join(promDir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: mixflow",
        "    static_configs:",
        `      - targets: ["${s.metricsAddress}"]`,
        "",
      ].join("\n"),
    );
    let log = "";
    prom = spawn(
      "prometheus",
      [
        `--config.file=${path.join(promDir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(promDir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prom.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    prom.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    const base = `http://127.0.0.1:${port}`;

    const driven = await driveRun(s.server.address, s.server, RUN, STEPS);
    const run = s.server.registry.get(RUN);

    // Wait for a scrape taken after the run finished (batches served reached its final value).
    await until(
      async () => {
        // ...and the version the last reports committed (published asynchronously after them).
        const r = await query(base, `mixflow_batches_served_total{job="mixflow",run="${RUN}"}`);
        const v = await query(base, `mixflow_weights_version{job="mixflow",run="${RUN}"}`);
        return r.length === 1 && Number(r[0]!.value[1]) === 2 * STEPS && v.length === 1 && Number(v[0]!.value[1]) === run.currentVersion.version;
      },
      20_000,
      `Prometheus to scrape the final state (log: ${log.slice(-500)})`,
    );
    expect((await query(base, `up{job="mixflow"}`))[0]!.value[1]).toBe("1");

    // Weights: equal to GetWeights' latest version, as a real client sees them.
    const c = new MixflowClient(s.server.address);
    const gw = await c.getWeights(RUN);
    c.close();
    const latest = gw.versions[gw.versions.length - 1]!;
    expect(latest.version).toBeGreaterThan(1);
    const weights = await byDomain(base, `mixflow_domain_weight{run="${RUN}"}`);
    gw.domains.forEach((d, i) => expect(weights[d]).toBeCloseTo(latest.weights[i]!, 12));
    expect(Number((await query(base, `mixflow_weights_version{run="${RUN}"}`))[0]!.value[1])).toBe(latest.version);

    // Samples served: the planner's cumulative counts over the served steps (each step's
    // global batch is split across the two ranks, each slice served once).
    const planned = run.planner.cumulative(STEPS);
    const served = await byDomain(base, `mixflow_samples_served_total{run="${RUN}"}`);
    DOMAINS.forEach((d, i) => {
      expect(served[d]).toBe(planned[i]);
      expect(served[d]).toBe(driven.samples[i]);
    });

    // Losses: the EMA of what the trainer reported, and the last eval losses it sent.
    const ema = expectedEma(driven.stepMeans, LOSS_EMA_ALPHA);
    const lossEma = await byDomain(base, `mixflow_train_loss_ema{run="${RUN}"}`);
    const evalLoss = await byDomain(base, `mixflow_eval_loss{run="${RUN}"}`);
    DOMAINS.forEach((d, i) => {
      expect(lossEma[d]).toBeCloseTo(ema[i]!, 9);
      expect(evalLoss[d]).toBeCloseTo(driven.evalLosses[d]!, 12);
    });

    // Progress and rates are queryable the way the dashboard queries them.
    expect(Number((await query(base, `mixflow_current_step{run="${RUN}"}`))[0]!.value[1])).toBe(STEPS - 1);
    expect(Number((await query(base, `sum(mixflow_signals_received_total{run="${RUN}"})`))[0]!.value[1])).toBe(2 * STEPS);
    const hist = await query(base, `histogram_quantile(0.99, sum by (le) (mixflow_batch_assembly_seconds_bucket{run="${RUN}"}))`);
    expect(hist).toHaveLength(1);

    // Every query of the example Grafana dashboard is valid PromQL for this Prometheus, and
    // the mixture panels return one series per domain.
    const dash = JSON.parse(fs.readFileSync("examples/grafana/mixflow.json", "utf8")) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const fill = (e: string): string => e.replaceAll("$run", RUN).replaceAll("$job", "mixflow").replaceAll("$__rate_interval", "1m");
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        const res = await query(base, fill(t.expr));
        if (/^mixflow_(domain_weight|train_loss_ema|eval_loss)\{/.test(t.expr)) expect(res.map((r) => r.metric.domain).sort(), p.title).toEqual([...DOMAINS].sort());
      }
    }
  }, 40_000);
});
