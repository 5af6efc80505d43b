/**
 * Eval requests across replicas: three replicas on a real etcd serve one run under the
 * default adaptive strategy (mixflow), which changes its weights only when eval losses
 * arrive. The leader's eval requests are log entries, so every replica serves the eval
 * request (and the same probes) at the same step to rank 0; the eval losses reported to
 * any replica are forwarded to the leader, whose strategy then commits new versions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import type { Batch } from "../../src/client/types.js";
import { isEvalEntry, evalStepOf, type EntryBody } from "../../src/cluster/entries.js";
import { EtcdVersionLog } from "../../src/cluster/etcd-version-log.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { EtcdCluster } from "./etcd-harness.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

const RUN = "evals";
const STEPS = 400;
const NAMES = ["a", "b", "c"];

let etcd: EtcdCluster;
let replicas: InProcessReplica[] = [];
let clients: MixflowClient[] = [];
let dir: string;

beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
  dir = tmpDir("mixflow-cluster-eval-");
  for (const id of ["a", "b", "c"]) replicas.push(await startReplica(dir, etcd.url, id));
  clients = replicas.map((r) => new MixflowClient(r.address, { deadlineMs: 20_000 }));
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of replicas) await r.stop();
  await etcd?.stop();
});

/** The same bytes: composition, payload, the eval request and its probes. */
function fingerprint(x: Batch): string {
  return JSON.stringify([
    x.step,
    x.rank,
    x.version,
    x.digest,
    Array.from(x.slotDomains),
    Array.from(x.slotSamples),
    x.text ? x.text.data.toString("base64") : null,
    x.evalRequested,
    x.probes.map((p) => [p.domain, Array.from(p.sampleIndices), p.text ? p.text.data.toString("base64") : null]),
  ]);
}

async function until(what: string, cond: () => Promise<boolean> | boolean, tries = 600): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("eval requests with replicas", () => {
  it("serve the leader's eval requests from every replica and bring the eval losses to the leader (mixflow)", async () => {
    const cfg = runConfigFor(dir, { id: RUN, batchSize: 8, worldSize: 2, maxSteps: STEPS, strategy: { name: "mixflow", params: { evalEvery: 5 } } }, NAMES);
    await clients[0]!.createRun(cfg);
    for (const c of clients) await until("the run on every replica", async () => (await c.listRuns()).some((r) => r.runId === RUN));
    const served = new Map<string, string>();
    const evalServed = new Set<number>();
    const window = 4;
    for (let s0 = 0; s0 < STEPS; s0 += window) {
      await Promise.all(
        Array.from({ length: Math.min(window, STEPS - s0) }, (_, k) => s0 + k).flatMap((step) =>
          [0, 1].map(async (rank) => {
            const c = clients[(step + rank) % clients.length]!;
            const batch = await c.nextBatch(RUN, step, rank, 2);
            served.set(`${step}:${rank}`, fingerprint(batch));
            const losses = Array.from(batch.slotDomains, (d) => 2 + d * 0.3);
            let evalLosses: Record<string, number> | undefined;
            if (batch.evalRequested) {
              evalServed.add(step);
              expect(batch.probes.length).toBe(NAMES.length);
              // Domain "c" improves fastest: the strategy should notice (weights change).
              evalLosses = Object.fromEntries(batch.probes.map((p) => [NAMES[p.domain]!, 3 - (p.domain + 1) * 0.002 * step]));
            }
            await c.reportSignals({ runId: RUN, step, rank, worldSize: 2, sampleLosses: losses, ...(evalLosses ? { evalLosses } : {}) });
          }),
        ),
      );
    }
    const committed = (): number => replicas.reduce((n, r) => n + r.node.stats.committed, 0);
    const evalEntries = (): number => replicas.reduce((n, r) => n + r.node.stats.evalRequests, 0);
    let views: Awaited<ReturnType<MixflowClient["getWeights"]>>[] = [];
    await until("every committed version on every replica", async () => {
      const before = committed();
      views = await Promise.all(clients.map((c) => c.getWeights(RUN)));
      return views.every((w) => w.versions.length === before + 1) && committed() === before;
    });
    for (const w of views) expect(w.versions).toEqual(views[0]!.versions);

    // The log: eval entries and versions carrying eval steps, decided by the leader(s).
    const log = new EtcdVersionLog(replicas[0]!.node.etcd, replicas[0]!.node.addr.prefix, RUN);
    const { entries } = await log.scan(1);
    const bodies = entries.map((e) => e.body as EntryBody);
    const logEvalSteps = new Set(bodies.map(evalStepOf).filter((s): s is number => s !== null));
    expect(bodies.filter(isEvalEntry).length).toBe(evalEntries());
    // Init asks for an eval at step 0 (pure: every replica knows it without the log).
    const expected = new Set([0, ...[...logEvalSteps].filter((s) => s < STEPS)]);
    expect([...evalServed].sort((x, y) => x - y)).toEqual([...expected].sort((x, y) => x - y));
    // Measured: 32 eval steps served in 400 steps (evalEvery 5, 16-step reservations).
    expect(evalServed.size).toBeGreaterThanOrEqual(8);

    // Versions advanced, and each (after init) was decided on a step whose eval losses the
    // leader received: mixflow emits weights only when eval losses arrive.
    const versions = views[0]!.versions;
    // Measured: 28 versions.
    expect(versions.length).toBeGreaterThanOrEqual(8);
    for (const v of versions.slice(1)) expect(evalServed.has(v.committedAtStep)).toBe(true);
    const first = versions[0]!.weights;
    const last = versions[versions.length - 1]!.weights;
    expect(last).not.toEqual(first);

    // Every (step, rank) again from another replica: the same bytes, the same eval request.
    for (let s0 = 0; s0 < STEPS; s0 += 50) {
      const got = await Promise.all(
        Array.from({ length: 50 }, (_, k) => s0 + k).flatMap((step) => [0, 1].map((rank) => clients[(step + rank + 1) % clients.length]!.nextBatch(RUN, step, rank, 2))),
      );
      for (const x of got) expect(fingerprint(x)).toBe(served.get(`${x.step}:${x.rank}`));
    }
  }, 300_000);
});
