/**
 * What a client sees when the cluster fails behind a replica: a status that says whether
 * retrying helps (UNAVAILABLE for etcd down, ALREADY_EXISTS for a taken run id, DATA_LOSS
 * for a malformed entry in etcd), never INTERNAL, and messages that name the run, key or
 * flag without echoing what was stored or typed as a secret. Real etcd (one member) and a
 * real replica on loopback; the etcd outage is a killed member.
 */
import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { MixflowClient } from "../../src/client/index.js";
import { connectEtcd, parseClusterAddress } from "../../src/cluster/etcd-client.js";
import { isClusterError } from "../../src/cluster/errors.js";
import { EtcdVersionLog } from "../../src/cluster/etcd-version-log.js";
import { RunKeys } from "../../src/cluster/keys.js";
import { RunCatalog } from "../../src/cluster/run-catalog.js";
import { toServiceError } from "../../src/server/wrap.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { EtcdCluster } from "./etcd-harness.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

let etcd: EtcdCluster;
let c: Etcd3;
let replica: InProcessReplica;
let client: MixflowClient;
const dir = tmpDir("mixflow-cluster-errors-");

async function failure(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  return p.then(
    () => ({ code: -1, message: "resolved" }),
    (e: { code?: number; details?: string; message?: string }) => ({ code: e.code ?? -2, message: e.details ?? e.message ?? "" }),
  );
}

beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
  c = connectEtcd(parseClusterAddress(etcd.url));
  replica = await startReplica(dir, etcd.url, "e1");
  client = new MixflowClient(replica.address, { deadlineMs: 30_000 });
}, 60_000);

afterAll(async () => {
  client?.close();
  c?.close();
  await replica?.stop();
  await etcd?.stop();
});

describe("cluster errors at the edge", () => {
  it("a run id taken in the catalog with another config is ALREADY_EXISTS", async () => {
    const catalog = new RunCatalog(c, "errs/");
    await catalog.create("taken", '{"id":"taken","v":1}', []);
    const err = await catalog.create("taken", '{"id":"taken","v":2}', []).catch((e: unknown) => e);
    expect(isClusterError(err, "RUN_EXISTS")).toBe(true);
    expect(toServiceError(err).code).toBe(grpc.status.ALREADY_EXISTS);
    expect(toServiceError(err).details).toContain('run "taken"');
  });

  it("a malformed log entry is DATA_LOSS naming its key, without its value", async () => {
    const keys = new RunKeys("errs/", "bent");
    await c.put(keys.entry(1)).value("not json: s3cr3t-payload");
    const err = await new EtcdVersionLog(c, "errs/", "bent").scan().catch((e: unknown) => e);
    expect(isClusterError(err, "CORRUPT")).toBe(true);
    const se = toServiceError(err);
    expect(se.code).toBe(grpc.status.DATA_LOSS);
    expect(se.details).toContain(keys.entry(1));
    expect(se.details).not.toContain("s3cr3t");
  });

  it("a bad --cluster address is INVALID_ARGUMENT and does not repeat a password written into it", () => {
    const err = (() => {
      try {
        return parseClusterAddress("etcd://admin:hunter2@127.0.0.1:2379");
      } catch (e) {
        return e;
      }
    })();
    expect(isClusterError(err, "BAD_SETTINGS")).toBe(true);
    const se = toServiceError(err);
    expect(se.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(se.details).toContain("127.0.0.1:2379");
    expect(se.details).not.toContain("hunter2");
  });

  it("with etcd down, CreateRun, CloseRun and a lookup of a run this replica lacks are UNAVAILABLE naming the run, not INTERNAL or NOT_FOUND", async () => {
    await client.createRun(runConfigFor(dir, { id: "kept", maxSteps: 10 }));
    await etcd.kill(0);
    const created = await failure(client.createRun(runConfigFor(dir, { id: "later", maxSteps: 10 })));
    expect(created.code).toBe(grpc.status.UNAVAILABLE);
    expect(created.message).toContain('run "later"');
    const looked = await failure(client.getWeights("elsewhere"));
    expect(looked.code).toBe(grpc.status.UNAVAILABLE);
    expect(looked.message).toContain('run "elsewhere"');
    const closed = await failure(client.closeRun("kept"));
    expect(closed.code).toBe(grpc.status.UNAVAILABLE);
    expect(closed.message).toContain('run "kept"');
    // Once etcd is back, the same calls succeed (retrying helped).
    await etcd.restart(0);
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await client.createRun(runConfigFor(dir, { id: "later", maxSteps: 10 })).then(
        () => true,
        () => new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
      );
    }
    expect(ok).toBe(true);
    await client.closeRun("kept");
  }, 120_000);
});
