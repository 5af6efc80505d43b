/**
 * `mixflow serve --cluster` as a process (the bundled CLI): its /metrics carries the
 * cluster series (serve.ts registers them next to the server's), and bad cluster flags
 * stop it before it listens, with a message naming the flag.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { parseExposition } from "../metrics/helpers.js";
import { EtcdCluster } from "./etcd-harness.js";
import { bundleClusterCli, spawnReplica, type ProcessReplica } from "./replicas.js";

let etcd: EtcdCluster;
let cli: string;
let dir: string;
let replica: ProcessReplica | null = null;

beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
  cli = await bundleClusterCli();
  dir = tmpDir("mixflow-serve-cli-");
}, 120_000);

afterAll(async () => {
  await replica?.kill();
  await etcd?.stop();
});

const failure = (args: string[], nodeId: string): Promise<string> =>
  spawnReplica(cli, dir, etcd.url, nodeId, 60_000, 0, 16, { args }).then(
    async (r) => {
      await r.kill();
      return "started";
    },
    (e: Error) => e.message,
  );

describe("mixflow serve --cluster (process)", () => {
  it("exports the cluster series on its /metrics", async () => {
    replica = await spawnReplica(cli, dir, etcd.url, "cli-a", 60_000, 0, 16, { metrics: true });
    expect(replica.metricsAddress).not.toBeNull();
    const c = new MixflowClient(replica.address, { deadlineMs: 20_000 });
    await c.createRun(runConfigFor(dir, { id: "cli-run", maxSteps: 10 }));
    let m = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      m = parseExposition(await (await fetch(`http://${replica.metricsAddress}/metrics`)).text());
      if (m.get(`mixflow_cluster_leader{run="cli-run"}`) === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.close();
    expect(m.get(`mixflow_cluster_info{node="cli-a"}`)).toBe(1);
    // The only replica leads its run; the run's init version is applied.
    expect(m.get(`mixflow_cluster_leader{run="cli-run"}`)).toBe(1);
    expect(m.get(`mixflow_cluster_committed_version{run="cli-run"}`)).toBe(1);
    // The single-process series are still there.
    expect(m.has(`mixflow_weights_version{run="cli-run"}`)).toBe(true);
  }, 120_000);

  it("refuses bad cluster flags before listening, naming the flag", async () => {
    expect(await failure(["--cluster-forward-ca", "ca.pem"], "bad-1")).toMatch(/--cluster-forward-ca, --cluster-forward-cert and --cluster-forward-key go together/);
    expect(await failure(["--cluster-ca", "ca.pem"], "bad-2")).toMatch(/need TLS: write the address as etcds:\/\//);
    expect(await failure(["--cluster-user", "u"], "bad-3")).toMatch(/--cluster-user needs a password/);
  }, 120_000);
});
