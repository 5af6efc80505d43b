/**
 * A replica that cannot read a run's etcd log when it first follows it (an etcd member
 * restarting, no quorum for a moment) must retry, not stay unservable: the failover test
 * found a replica restarted during an etcd outage failing every NextBatch with INTERNAL
 * for the rest of its life. Here the first two follows fail (the real etcd stays up, so
 * the moment is forced by wrapping the real `follow` once per call); the replica still
 * serves the run, byte-identical to the other one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import type { Batch } from "../../src/client/types.js";
import { EtcdVersionLog } from "../../src/cluster/etcd-version-log.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";
import { EtcdCluster } from "./etcd-harness.js";
import { startReplica, type InProcessReplica } from "./replicas.js";

let etcd: EtcdCluster;
let a: InProcessReplica;
let b: InProcessReplica | null = null;
let dir: string;
const realFollow = EtcdVersionLog.prototype.follow;

beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
  dir = tmpDir("mixflow-follow-retry-");
  a = await startReplica(dir, etcd.url, "a");
}, 90_000);

afterAll(async () => {
  EtcdVersionLog.prototype.follow = realFollow;
  await b?.stop();
  await a?.stop();
  await etcd?.stop();
});

const fingerprint = (x: Batch): string => JSON.stringify([x.step, x.rank, x.version, x.digest, Array.from(x.slotDomains), Array.from(x.slotSamples)]);

describe("following a run's log", () => {
  it("is retried when etcd fails the first reads, and the replica then serves the run", async () => {
    const ca = new MixflowClient(a.address, { deadlineMs: 20_000 });
    await ca.createRun(runConfigFor(dir, { id: "late", batchSize: 8, worldSize: 1, maxSteps: 0, strategy: { name: "static" } }, ["a", "b"]));
    const first = await ca.nextBatch("late", 0, 0, 1);

    let calls = 0;
    EtcdVersionLog.prototype.follow = function (this: EtcdVersionLog, ...args: Parameters<EtcdVersionLog["follow"]>) {
      calls++;
      if (calls <= 2) return Promise.reject(Object.assign(new Error("14 UNAVAILABLE: No connection established (forced by the test)"), { code: 14 }));
      return realFollow.apply(this, args);
    };
    b = await startReplica(dir, etcd.url, "b");
    const cb = new MixflowClient(b.address, { deadlineMs: 20_000 });
    const again = await cb.nextBatch("late", 0, 0, 1);
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(fingerprint(again)).toBe(fingerprint(first));
    ca.close();
    cb.close();
  }, 90_000);
});
