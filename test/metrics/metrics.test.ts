/**
 * The metrics endpoint of a real server that served batches and received signals: values
 * equal what the trainer saw and reported, rejections are counted by method and code, the
 * domain cap sums the rest into "other", and promtool finds nothing to complain about.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { domainBuckets, LOSS_EMA_ALPHA } from "../../src/metrics/index.js";
import { DOMAINS, driveRun, expectedEma, parseExposition, startServer, type Driven, type Started } from "./helpers.js";
import { requireTool } from "../helpers/tools.js";

const STEPS = 12;
const RUN = "m1";

async function scrape(address: string): Promise<{ text: string; contentType: string }> {
  const res = await fetch(`http://${address}/metrics`);
  expect(res.status).toBe(200);
  return { text: await res.text(), contentType: res.headers.get("content-type") ?? "" };
}

describe("metrics endpoint", () => {
  let s: Started;
  let driven: Driven;
  let text: string;
  let m: Map<string, number>;

  beforeAll(async () => {
    s = await startServer(RUN);
    driven = await driveRun(s.server.address, s.server, RUN, STEPS);
    // Rejections: a NaN loss (INVALID_ARGUMENT), an unknown run (NOT_FOUND), a step not served yet (FAILED_PRECONDITION).
    const c = new MixflowClient(s.server.address);
    const codeOf = (p: Promise<unknown>): Promise<number> => p.then(() => 0, (e: { code: number }) => e.code);
    expect(await codeOf(c.reportSignals({ runId: RUN, step: 0, rank: 0, worldSize: 2, sampleLosses: [NaN, 1, 1, 1] }))).toBe(3);
    expect(await codeOf(c.reportSignals({ runId: "nope", step: 0, sampleLosses: [1] }))).toBe(5);
    expect(await codeOf(c.reportSignals({ runId: RUN, step: 500, rank: 0, worldSize: 2, sampleLosses: [1, 1, 1, 1] }))).toBe(9);
    expect(await codeOf(c.nextBatch("nope", 0))).toBe(5);
    c.close();
    const r = await scrape(s.metricsAddress);
    text = r.text;
    expect(r.contentType).toContain("text/plain");
    m = parseExposition(text);
  });

  afterAll(async () => {
    await s?.stop();
    if (s) fs.rmSync(s.root, { recursive: true, force: true });
  });

  it("exports the latest committed weights per domain, equal to the run's", () => {
    const run = s.server.registry.get(RUN);
    const v = run.currentVersion;
    expect(v.version).toBeGreaterThan(1); // exp3 without warm-up committed new versions
    DOMAINS.forEach((d, i) => expect(m.get(`mixflow_domain_weight{run="${RUN}",domain="${d}"}`)).toBeCloseTo(v.weights[i]!, 12));
    expect(m.get(`mixflow_weights_version{run="${RUN}"}`)).toBe(v.version);
    expect(m.get(`mixflow_weights_from_step{run="${RUN}"}`)).toBe(v.fromStep);
  });

  it("counts samples, payload bytes and batches served as the trainer received them", () => {
    DOMAINS.forEach((d, i) => {
      expect(m.get(`mixflow_samples_served_total{run="${RUN}",domain="${d}"}`)).toBe(driven.samples[i]);
      expect(m.get(`mixflow_served_payload_bytes_total{run="${RUN}",domain="${d}"}`)).toBe(driven.bytes[i]);
    });
    expect(driven.samples.reduce((a, b) => a + b, 0)).toBe(STEPS * 8);
    expect(m.get(`mixflow_batches_served_total{run="${RUN}"}`)).toBe(2 * STEPS);
    expect(m.get(`mixflow_batch_assembly_seconds_count{run="${RUN}"}`)).toBe(2 * STEPS);
  });

  it("keeps the smoothed training loss and the last eval loss per domain", () => {
    const ema = expectedEma(driven.stepMeans, LOSS_EMA_ALPHA);
    DOMAINS.forEach((d, i) => {
      expect(ema[i]).not.toBeNull();
      expect(m.get(`mixflow_train_loss_ema{run="${RUN}",domain="${d}"}`)).toBeCloseTo(ema[i]!, 9);
      expect(m.get(`mixflow_eval_loss{run="${RUN}",domain="${d}"}`)).toBeCloseTo(driven.evalLosses[d]!, 12);
    });
    expect(m.get(`mixflow_strategy_update_seconds_count{run="${RUN}"}`)).toBe(STEPS);
  });

  it("counts signals, rejections by method and code, and gRPC calls", () => {
    expect(m.get(`mixflow_signals_received_total{run="${RUN}"}`)).toBe(driven.reports);
    expect(m.get(`mixflow_requests_rejected_total{method="ReportSignals",code="INVALID_ARGUMENT"}`)).toBe(1);
    expect(m.get(`mixflow_requests_rejected_total{method="ReportSignals",code="NOT_FOUND"}`)).toBe(1);
    expect(m.get(`mixflow_requests_rejected_total{method="ReportSignals",code="FAILED_PRECONDITION"}`)).toBe(1);
    expect(m.get(`mixflow_requests_rejected_total{method="NextBatch",code="NOT_FOUND"}`)).toBe(1);
    expect(m.get(`mixflow_grpc_server_handled_total{method="NextBatch",code="OK"}`)).toBe(2 * STEPS);
    expect(m.get(`mixflow_grpc_server_handled_total{method="ReportSignals",code="OK"}`)).toBe(2 * STEPS);
    expect(m.get(`mixflow_grpc_server_handling_seconds_count{method="ReportSignals"}`)).toBe(2 * STEPS + 3);
  });

  it("reports progress, ranks, journal activity, build info and process defaults", () => {
    expect(m.get(`mixflow_current_step{run="${RUN}"}`)).toBe(STEPS - 1);
    expect(m.get(`mixflow_serving_frontier_step{run="${RUN}"}`)).toBe(STEPS - 1);
    expect(m.get(`mixflow_connected_ranks{run="${RUN}"}`)).toBe(2);
    expect(m.get(`mixflow_runs{state="open"}`)).toBe(1);
    expect(m.get("mixflow_journal_appended_records_total")).toBeGreaterThanOrEqual(2 * STEPS + STEPS);
    expect(m.get("mixflow_journal_appended_bytes_total")).toBeGreaterThan(0);
    expect(m.get("mixflow_journal_append_seconds_count")).toBeGreaterThan(0);
    // durability "none" never fsyncs, so the histogram exists but stays empty.
    expect(m.get("mixflow_journal_fsync_seconds_count")).toBe(0);
    const version = (JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string }).version;
    expect(m.get(`mixflow_build_info{version="${version}",node_version="${process.version}"}`)).toBe(1);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
  });

  it("uses bounded labels only (run, domain, method, code, kind, state, le, build info)", () => {
    const allowed = new Set(["run", "domain", "method", "code", "kind", "state", "le", "version", "node_version", "space", "type", "kind", "major", "minor", "patch"]);
    for (const key of m.keys()) {
      if (!key.startsWith("mixflow_")) continue;
      for (const [, label] of key.matchAll(/([a-z_]+)="/g)) expect(allowed, `${key}`).toContain(label);
    }
  });

  it("the example dashboard queries only series this server exports", async () => {
    const exported = new Set((await s.metrics.registry.getMetricsAsJSON()).map((x) => x.name));
    const dash = fs.readFileSync("examples/grafana/mixflow.json", "utf8");
    const used = new Set([...dash.matchAll(/\b((?:mixflow|process|nodejs)_[a-z_]+)/g)].map((x) => x[1]!.replace(/_(bucket|count|sum)$/, "")));
    expect(used.size).toBeGreaterThan(15);
    for (const name of used) expect(exported, name).toContain(name);
  });

  it("the example Prometheus config passes `promtool check config` (needs promtool)", () => {
    requireTool("promtool");
    const r = spawnSync("promtool", ["check", "config", "examples/prometheus/prometheus.yml"], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toContain("SUCCESS");
    expect(r.status).toBe(0);
  });

  it("passes `promtool check metrics` (needs promtool on PATH)", () => {
    requireTool("promtool");
    const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("domain series cap", () => {
  it("keeps maxDomainSeries - 1 domains and sums the rest as domain=\"other\"", async () => {
    const s = await startServer("cap", { maxDomainSeries: 2 });
    try {
      const driven = await driveRun(s.server.address, s.server, "cap", 4);
      const m = parseExposition((await scrape(s.metricsAddress)).text);
      const v = s.server.registry.get("cap").currentVersion;
      expect(m.get(`mixflow_domain_weight{run="cap",domain="prose"}`)).toBeCloseTo(v.weights[0]!, 12);
      expect(m.get(`mixflow_domain_weight{run="cap",domain="other"}`)).toBeCloseTo(v.weights[1]! + v.weights[2]!, 12);
      expect(m.has(`mixflow_domain_weight{run="cap",domain="code"}`)).toBe(false);
      expect(m.get(`mixflow_samples_served_total{run="cap",domain="other"}`)).toBe(driven.samples[1]! + driven.samples[2]!);
      expect(m.get(`mixflow_served_payload_bytes_total{run="cap",domain="other"}`)).toBe(driven.bytes[1]! + driven.bytes[2]!);
    } finally {
      await s.stop();
      fs.rmSync(s.root, { recursive: true, force: true });
    }
  });

  it("bucketing: index order, 'other' renamed on collision", () => {
    expect(domainBuckets(["a", "b"], 2).labels).toEqual(["a", "b"]);
    const b = domainBuckets(["a", "other", "c", "d"], 3);
    expect(b.labels).toEqual(["a", "other", "~other"]);
    expect([...b.of]).toEqual([0, 1, 2, 2]);
    expect([...b.sizes]).toEqual([1, 1, 2]);
  });
});

describe("mixflow serve", () => {
  it("prints the metrics address in its listening line, serves /metrics, and can switch metrics off", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-serve-"));
    const start = async (extra: string[]): Promise<Record<string, unknown>> => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--durability", "none", ...extra], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let buf = "";
          child.stdout.on("data", (d: Buffer) => {
            buf += d.toString();
            if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
          });
          child.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
        });
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (typeof msg.metrics === "string") {
          const res = await fetch(`http://${msg.metrics}/metrics`);
          msg.scraped = (await res.text()).includes("mixflow_build_info");
        }
        return msg;
      } finally {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    };
    try {
      const on = await start(["--metrics-listen", "127.0.0.1:0"]);
      expect(on.event).toBe("listening");
      expect(on.metrics).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(on.scraped).toBe(true);
      const cfg = path.join(dir, "off.json");
      fs.writeFileSync(cfg, JSON.stringify({ metrics: { enabled: false } }));
      const off = await start(["--config", cfg]);
      expect(off.metrics).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
