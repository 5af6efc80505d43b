/**
 * The cluster series on the real /metrics endpoint of two replicas (in-process servers
 * with the Prometheus endpoint `mixflow serve --cluster` starts): role per run, committed
 * version, reservations, forwarded slices, elections and step-downs, watch lag; the
 * exposition passes `promtool check metrics`.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { requireTool } from "../helpers/tools.js";
import { parseExposition } from "../metrics/helpers.js";
import { EtcdCluster } from "./etcd-harness.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

const RUN = "metered";
const STEPS = 120;

let etcd: EtcdCluster;
let reps: InProcessReplica[] = [];
let clients: MixflowClient[] = [];
let dir: string;

beforeAll(async () => {
  requireTool("promtool");
  etcd = await EtcdCluster.start(1);
  dir = tmpDir("mixflow-cluster-metrics-");
  for (const id of ["a", "b"]) reps.push(await startReplica(dir, etcd.url, id, [], 16, { metrics: true }));
  clients = reps.map((r) => new MixflowClient(r.address, { deadlineMs: 20_000 }));
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of reps) await r.stop();
  await etcd?.stop();
});

async function scrape(r: InProcessReplica): Promise<{ text: string; m: Map<string, number> }> {
  const res = await fetch(`http://${r.metricsAddress}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, m: parseExposition(text) };
}

async function until(what: string, cond: () => Promise<boolean> | boolean, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const L = `{run="${RUN}"}`;
const O = (outcome: string): string => `{run="${RUN}",outcome="${outcome}"}`;

describe("cluster metrics", () => {
  it("export role, versions, reservations, forwards, elections and watch lag; promtool accepts them", async () => {
    await clients[0]!.createRun(runConfigFor(dir, { id: RUN, batchSize: 8, worldSize: 2, maxSteps: 1000, strategy: { name: "exp3", params: { warmupSteps: 5 } } }, ["a", "b", "c"]));
    await until("the run on b", async () => (await clients[1]!.listRuns()).some((r) => r.runId === RUN));
    await until("a leader", () => reps.some((r) => r.node.leads(RUN)));
    // Rank r goes through replica r: the follower's reports must be forwarded.
    for (let s0 = 0; s0 < STEPS; s0 += 4) {
      await Promise.all(
        [0, 1, 2, 3].flatMap((k) =>
          [0, 1].map(async (rank) => {
            const step = s0 + k;
            const b = await clients[rank]!.nextBatch(RUN, step, rank, 2);
            await clients[rank]!.reportSignals({ runId: RUN, step, rank, worldSize: 2, sampleLosses: Array.from(b.slotDomains, (d) => 1 + d * 0.5) });
          }),
        ),
      );
    }
    const view = (i: number) => reps[i]!.node.views().find((v) => v.runId === RUN)!;
    const leading = reps.findIndex((r) => r.node.leads(RUN));
    // Every step folded by the leader (its last commit made), then applied on both.
    await until("every step folded and committed", () => view(leading).foldedSteps === STEPS && !view(leading).committing);
    await until("every version on both replicas", async () => {
      const c = reps[leading]!.node.stats.committed;
      const w = await Promise.all(clients.map((x) => x.getWeights(RUN)));
      return w.every((x) => x.versions.length === c + 1);
    });
    const versions = (await clients[0]!.getWeights(RUN)).versions.length;
    expect(versions).toBeGreaterThan(5);
    const leader = reps.findIndex((r) => r.node.leads(RUN));
    const follower = 1 - leader;
    const [ml, mf] = [(await scrape(reps[leader]!)).m, (await scrape(reps[follower]!)).m];

    expect(ml.get(`mixflow_cluster_leader${L}`)).toBe(1);
    expect(mf.get(`mixflow_cluster_leader${L}`)).toBe(0);
    expect(ml.get(`mixflow_cluster_info{node="${reps[leader]!.node.settings.nodeId}"}`)).toBe(1);
    for (const m of [ml, mf]) {
      expect(m.get(`mixflow_cluster_committed_version${L}`)).toBe(versions);
      // exp3: one init entry, then one entry per version (no eval requests).
      expect(m.get(`mixflow_cluster_log_applied_seq${L}`)).toBe(versions);
      expect(m.get(`mixflow_cluster_reservations_total${O("ok")}`)).toBeGreaterThan(0);
      expect(m.get(`mixflow_cluster_reservations_total${O("error")}`)).toBe(0);
      expect(m.get(`mixflow_cluster_reserved_step${L}`)).toBeGreaterThanOrEqual(STEPS - 1);
      expect(m.get(`mixflow_cluster_frontier_step${L}`)).toBeGreaterThanOrEqual(m.get(`mixflow_cluster_reserved_step${L}`)!);
      // Every entry after init reached this replica through its watch: one lag sample each.
      expect(m.get(`mixflow_cluster_watch_lag_seconds_count${L}`)).toBe(versions - 1);
      expect(m.get(`mixflow_cluster_watch_lag_seconds_sum${L}`)).toBeLessThan((versions - 1) * 5);
    }
    expect(ml.get(`mixflow_cluster_commits_total${O("version")}`)).toBe(versions - 1);
    expect(mf.get(`mixflow_cluster_commits_total${O("version")}`)).toBe(0);
    expect(ml.get(`mixflow_cluster_elections_total${L}`)).toBe(1);
    expect(mf.get(`mixflow_cluster_elections_total${L}`)).toBe(0);
    expect(ml.get(`mixflow_cluster_step_downs_total${L}`)).toBe(0);
    // The follower forwarded its rank's slices (one per step) and the leader received them.
    expect(mf.get(`mixflow_cluster_forwarded_slices_total${O("sent")}`)).toBe(STEPS);
    expect(ml.get(`mixflow_cluster_forwarded_slices_total${O("received")}`)).toBeGreaterThanOrEqual(STEPS);

    // Take the leadership away (delete the leader's campaign key, as a lease expiry does):
    // the old leader steps down, the other is elected.
    const electionPrefix = `${reps[0]!.node.addr.prefix}runs/${RUN}/election/`;
    const keys = await reps[0]!.node.etcd.getAll().prefix(electionPrefix).exec();
    const oldest = [...keys.kvs].sort((x, y) => (BigInt(x.create_revision) < BigInt(y.create_revision) ? -1 : 1))[0]!;
    await reps[0]!.node.etcd.delete().key(oldest.key.toString()).exec();
    // (The new leader may be elected before the old one's watchdog notices: etcd's fence
    // refuses the old one's commits meanwhile.)
    await until("the other replica leading, the old one stepped down", () => reps[follower]!.node.leads(RUN) && !reps[leader]!.node.leads(RUN));
    const [al, af] = [(await scrape(reps[leader]!)), (await scrape(reps[follower]!))];
    expect(al.m.get(`mixflow_cluster_step_downs_total${L}`)).toBe(1);
    expect(al.m.get(`mixflow_cluster_leader${L}`)).toBe(0);
    expect(af.m.get(`mixflow_cluster_elections_total${L}`)).toBe(1);
    expect(af.m.get(`mixflow_cluster_leader${L}`)).toBe(1);

    for (const { text } of [al, af]) {
      const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(r.stdout + r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  }, 180_000);
});
