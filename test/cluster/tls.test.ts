/**
 * Replicas on an etcd that serves clients only over TLS with client-certificate auth
 * (certificates made here by the openssl CLI), then with etcd's password auth enabled and
 * mixflow's user limited to its key prefix: `etcds://` with --cluster-ca/-cert/-key (and
 * --cluster-user) serves and commits; wrong or missing credentials are refused at start
 * with a message naming what is wrong.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Etcd3, Range } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { parseClusterAddress, securityOptions, type EtcdSecurity } from "../../src/cluster/etcd-client.js";
import { ClusterNode } from "../../src/cluster/node.js";
import { createLogger } from "../../src/util/log.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { EtcdCluster } from "./etcd-harness.js";
import { makeCa, makeLeaf } from "./pki.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

let dir: string;
let etcd: EtcdCluster;
const pem = (n: string): string => path.join(dir, n);

/** ca signs server (SAN 127.0.0.1) and client; other-ca signs rogue (a client etcd does not trust). */
function makePki(): void {
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  makeLeaf(dir, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  makeLeaf(dir, "client", "ca", "extendedKeyUsage=clientAuth\n");
  makeLeaf(dir, "rogue", "other-ca", "extendedKeyUsage=clientAuth\n");
}

const mtls = (): EtcdSecurity => ({ caFile: pem("ca.pem"), certFile: pem("client.pem"), keyFile: pem("client.key") });

/** ClusterNode.start's error for these settings (null if it started). */
async function startError(url: string, security: EtcdSecurity): Promise<string | null> {
  try {
    const node = await ClusterNode.start({ url, nodeId: "probe", forwardListen: "127.0.0.1:0", ttlSeconds: 2, reserveChunk: 16, security }, createLogger("silent"));
    await node.stop();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Serve a run through two TLS replicas while its weights change; returns the versions committed. */
async function serveRun(reps: InProcessReplica[], id: string, steps: number): Promise<number> {
  const clients = reps.map((r) => new MixflowClient(r.address, { deadlineMs: 20_000 }));
  try {
    await clients[0]!.createRun(runConfigFor(dir, { id, batchSize: 8, worldSize: 2, maxSteps: 1000, strategy: { name: "exp3", params: { warmupSteps: 2 } } }, ["a", "b", "c"]));
    const digests: string[][] = [[], []];
    for (let step = 0; step < steps; step++) {
      await Promise.all(
        [0, 1].map(async (rank) => {
          const b = await clients[rank]!.nextBatch(id, step, rank, 2);
          digests[rank]!.push(b.digest);
          await clients[rank]!.reportSignals({ runId: id, step, rank, worldSize: 2, sampleLosses: Array.from(b.slotDomains, (d) => 1 + d) });
        }),
      );
    }
    // Both replicas agree on every step's batch composition.
    expect(digests[0]).toEqual(digests[1]);
    for (let i = 0; i < 400; i++) {
      if (reps.reduce((n, r) => n + r.node.stats.committed, 0) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return reps.reduce((n, r) => n + r.node.stats.committed, 0);
  } finally {
    for (const c of clients) c.close();
  }
}

beforeAll(async () => {
  dir = tmpDir("mixflow-cluster-tls-");
  makePki();
  etcd = await EtcdCluster.start(1, 30_000, { ca: pem("ca.pem"), cert: pem("server.pem"), key: pem("server.key"), clientCert: pem("client.pem"), clientKey: pem("client.key") });
}, 90_000);

afterAll(async () => {
  await etcd?.stop();
});

describe("etcd over TLS", () => {
  it("replicas serve and commit through etcds:// with a client certificate", async () => {
    expect(etcd.url.startsWith("etcds://")).toBe(true);
    const reps = [await startReplica(dir, etcd.url, "ta", [], 16, { security: mtls() }), await startReplica(dir, etcd.url, "tb", [], 16, { security: mtls() })];
    try {
      expect(await serveRun(reps, "tls-run", 30)).toBeGreaterThan(0);
    } finally {
      for (const r of reps) await r.stop();
    }
  }, 120_000);

  it("refuses wrong or missing TLS settings, naming what is wrong", async () => {
    const plain = etcd.url.replace("etcds://", "etcd://");
    // Plaintext to a TLS-only etcd, no client certificate, an untrusted certificate, the wrong CA.
    expect(await startError(plain, {})).toMatch(/cannot reach etcd/);
    expect(await startError(etcd.url, { caFile: pem("ca.pem") })).toMatch(/cannot reach etcd/);
    expect(await startError(etcd.url, { caFile: pem("ca.pem"), certFile: pem("rogue.pem"), keyFile: pem("rogue.key") })).toMatch(/cannot reach etcd/);
    expect(await startError(etcd.url, { caFile: pem("other-ca.pem"), certFile: pem("client.pem"), keyFile: pem("client.key") })).toMatch(/cannot reach etcd/);
    // Settings errors, before any connection: TLS files with etcd://, half a key pair,
    // unreadable and non-PEM files (named, contents never echoed).
    expect(await startError(plain, mtls())).toMatch(/need TLS: write the address as etcds:\/\//);
    expect(await startError(etcd.url, { caFile: pem("ca.pem"), certFile: pem("client.pem") })).toMatch(/--cluster-cert and --cluster-key go together/);
    expect(await startError(etcd.url, { ...mtls(), caFile: pem("missing.pem") })).toBe(`--cluster-ca ${pem("missing.pem")}: cannot read it (ENOENT)`);
    fs.writeFileSync(pem("secret.txt"), "hunter2-not-a-certificate\n");
    const notPem = await startError(etcd.url, { ...mtls(), keyFile: pem("secret.txt") });
    expect(notPem).toBe(`--cluster-key ${pem("secret.txt")}: not a PEM file (no "-----BEGIN" line)`);
    expect(() => securityOptions(parseClusterAddress(etcd.url), { username: "u" })).toThrow(/needs a password/);
  }, 120_000);

  it("with etcd's password auth on: a user limited to mixflow's prefix serves; a wrong password is refused", async () => {
    const addr = parseClusterAddress(etcd.url);
    const admin = new Etcd3({ hosts: addr.hosts, ...securityOptions(addr, mtls()) });
    await admin.role("root").create();
    await admin.user("root").create("root-pw");
    await admin.user("root").addRole("root");
    await admin.role("mixflow").create();
    await admin.role("mixflow").grant({ permission: "Readwrite", range: Range.prefix("mixflow/") });
    await admin.user("mixflow").create("mixflow-pw");
    await admin.user("mixflow").addRole("mixflow");
    await admin.auth.authEnable();
    admin.close();
    const asMixflow = { ...mtls(), username: "mixflow", password: "mixflow-pw" };
    const reps = [await startReplica(dir, etcd.url, "aa", [], 16, { security: asMixflow }), await startReplica(dir, etcd.url, "ab", [], 16, { security: asMixflow })];
    try {
      expect(await serveRun(reps, "auth-run", 30)).toBeGreaterThan(0);
    } finally {
      for (const r of reps) await r.stop();
    }
    const wrong = await startError(etcd.url, { ...mtls(), username: "mixflow", password: "nope" });
    expect(wrong).toMatch(/cannot reach etcd: .*authentication failed/i);
    // Outside its prefix the user may not write (mixflow keeps to its prefix; this checks the grant).
    const root = new Etcd3({ hosts: addr.hosts, ...securityOptions(addr, asMixflow) });
    await expect(root.put("elsewhere/x").value("1").exec()).rejects.toThrow(/permission denied/i);
    root.close();
  }, 120_000);
});
