/**
 * Mutual TLS between replicas (the internal forward service that brings report slices to
 * the leader), certificates made by openssl: two replicas with --cluster-forward-* forward
 * and commit; a plaintext sender, a sender with a certificate another CA signed, and a
 * sender that does not trust the leader's CA are all refused, so nothing reaches the
 * leader's strategy from outside the cluster.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { ForwardSender, readForwardTls, type ForwardTls } from "../../src/cluster/forward.js";
import { ClusterNode } from "../../src/cluster/node.js";
import { createLogger } from "../../src/util/log.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { EtcdCluster } from "./etcd-harness.js";
import { makeCa, makeLeaf } from "./pki.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

const RUN = "fwd-tls";
const STEPS = 40;
let dir: string;
let etcd: EtcdCluster;
let reps: InProcessReplica[] = [];
const pem = (n: string): string => path.join(dir, n);
const tlsOf = (name: string, ca = "ca"): ForwardTls => ({ caFile: pem(`${ca}.pem`), certFile: pem(`${name}.pem`), keyFile: pem(`${name}.key`) });

beforeAll(async () => {
  dir = tmpDir("mixflow-forward-tls-");
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  const replicaExt = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";
  for (const n of ["ra", "rb", "member"]) makeLeaf(dir, n, "ca", replicaExt);
  makeLeaf(dir, "rogue", "other-ca", replicaExt);
  etcd = await EtcdCluster.start(1);
  reps = [await startReplica(dir, etcd.url, "ra", [], 16, { forwardTls: tlsOf("ra") }), await startReplica(dir, etcd.url, "rb", [], 16, { forwardTls: tlsOf("rb") })];
}, 90_000);

afterAll(async () => {
  for (const r of reps) await r.stop();
  await etcd?.stop();
});

describe("mutual TLS between replicas", () => {
  it("forwards over mTLS and refuses senders without a cluster certificate", async () => {
    const clients = reps.map((r) => new MixflowClient(r.address, { deadlineMs: 20_000 }));
    await clients[0]!.createRun(runConfigFor(dir, { id: RUN, batchSize: 8, worldSize: 2, maxSteps: 1000, strategy: { name: "exp3", params: { warmupSteps: 2 } } }, ["a", "b", "c"]));
    for (let i = 0; i < 400 && !reps.some((r) => r.node.leads(RUN)); i++) await new Promise((r) => setTimeout(r, 50));
    for (let step = 0; step < STEPS; step++) {
      await Promise.all(
        [0, 1].map(async (rank) => {
          const b = await clients[rank]!.nextBatch(RUN, step, rank, 2);
          await clients[rank]!.reportSignals({ runId: RUN, step, rank, worldSize: 2, sampleLosses: Array.from(b.slotDomains, (d) => 1 + d) });
        }),
      );
    }
    const leader = reps.findIndex((r) => r.node.leads(RUN));
    expect(leader).toBeGreaterThanOrEqual(0);
    const view = (i: number) => reps[i]!.node.views().find((v) => v.runId === RUN)!;
    for (let i = 0; i < 400 && view(1 - leader).counters.forwardsSent < STEPS; i++) await new Promise((r) => setTimeout(r, 50));
    // The follower's rank reported every step; each slice crossed the mTLS link.
    expect(view(1 - leader).counters.forwardsSent).toBe(STEPS);
    expect(view(1 - leader).counters.forwardsFailed).toBe(0);
    expect(view(leader).counters.forwardsReceived).toBeGreaterThanOrEqual(STEPS);
    for (let i = 0; i < 400 && reps[leader]!.node.stats.committed === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(reps[leader]!.node.stats.committed).toBeGreaterThan(0);

    const to = reps[leader]!.node.forwardAddress;
    const req = { runId: RUN, from: "outsider", slices: [] };
    const received = view(leader).counters.forwardsReceived;
    // A cluster member's certificate is accepted (true: it reached the leader's decider).
    const member = new ForwardSender(readForwardTls(tlsOf("member")));
    expect(await member.send(to, req, 5000)).toBe(true);
    member.close();
    for (const [what, sender] of [
      ["plaintext", new ForwardSender(null)],
      ["certificate from another CA", new ForwardSender(readForwardTls(tlsOf("rogue", "ca")))],
      ["not trusting the leader's CA", new ForwardSender(readForwardTls(tlsOf("member", "other-ca")))],
    ] as const) {
      const err = await sender.send(to, req, 5000).then(
        () => null,
        (e: { code?: number }) => e,
      );
      expect(err, what).not.toBeNull();
      expect(err!.code, what).toBe(14); // UNAVAILABLE: no handshake
      sender.close();
    }
    expect(view(leader).counters.forwardsReceived).toBe(received);
    for (const c of clients) c.close();
  }, 120_000);

  it("names the file when a forward TLS file is missing or not PEM", async () => {
    const start = (t: ForwardTls) =>
      ClusterNode.start({ url: etcd.url, nodeId: "x", forwardListen: "127.0.0.1:0", ttlSeconds: 2, reserveChunk: 16, forwardTls: t }, createLogger("silent")).then(
        async (n) => (await n.stop(), null),
        (e: Error) => e.message,
      );
    expect(await start({ ...tlsOf("ra"), certFile: pem("nope.pem") })).toBe(`--cluster-forward-cert ${pem("nope.pem")}: cannot read it (ENOENT)`);
    expect(await start({ ...tlsOf("ra"), keyFile: pem("ra.ext") })).toBe(`--cluster-forward-key ${pem("ra.ext")}: not a PEM file (no "-----BEGIN" line)`);
  }, 60_000);
});
