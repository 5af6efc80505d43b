/**
 * A long run's log against a real etcd: more entries than one gRPC reply may carry (the
 * client's 4 MiB receive limit). Reading the log (a follower's start, a new leader's
 * catch-up) and listing the catalog at a replica's start must page through it, not read it
 * in one range — a replica (re)starting next to a long run could not start otherwise.
 */
import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectEtcd, parseClusterAddress } from "../../src/cluster/etcd-client.js";
import { encodeEntry, EtcdVersionLog, type LogEntry } from "../../src/cluster/etcd-version-log.js";
import { RunKeys } from "../../src/cluster/keys.js";
import { RunCatalog } from "../../src/cluster/run-catalog.js";
import { EtcdCluster } from "./etcd-harness.js";

const PREFIX = "long/";
const ENTRIES = 400;
/** 16 KiB per entry: 400 entries are ~6.4 MiB, past one 4 MiB reply. */
const PAD = "x".repeat(16 * 1024);

let etcd: EtcdCluster;
let c: Etcd3;

beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
  c = connectEtcd(parseClusterAddress(etcd.url));
  const catalog = new RunCatalog(c, PREFIX);
  expect(await catalog.create("big", '{"id":"big"}', [{ seq: 1, fromStep: 0, body: { pad: PAD, n: 1 } }])).toBe("created");
  const keys = new RunKeys(PREFIX, "big");
  for (let s0 = 2; s0 <= ENTRIES; s0 += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, ENTRIES - s0 + 1) }, (_, k) => s0 + k).map((seq) =>
        c.put(keys.entry(seq)).value(encodeEntry({ seq, fromStep: seq * 10, body: { pad: PAD, n: seq } })).exec(),
      ),
    );
  }
  // Runs around it in key order ("big.x" sorts before "big/", "big0" after), one closed.
  await catalog.create("big.x", '{"id":"big.x"}', []);
  await catalog.create("big0", '{"id":"big0"}', [{ seq: 1, fromStep: 0, body: { pad: PAD, n: 1 } }]);
  await catalog.create("a", '{"id":"a"}', []);
  await catalog.close("a");
}, 120_000);

afterAll(async () => {
  c?.close();
  await etcd?.stop();
});

describe("a log longer than one etcd reply", () => {
  it("scans every entry in order", async () => {
    const log = new EtcdVersionLog(c, PREFIX, "big");
    const { entries } = await log.scan(1);
    expect(entries.length).toBe(ENTRIES);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: ENTRIES }, (_, i) => i + 1));
    expect(entries.every((e) => (e.body as { n: number }).n === e.seq)).toBe(true);
    expect((await log.scan(ENTRIES - 2)).entries.map((e) => e.seq)).toEqual([ENTRIES - 2, ENTRIES - 1, ENTRIES]);
  }, 60_000);

  it("a follower starting on it delivers every entry once, then the next one live", async () => {
    const log = new EtcdVersionLog(c, PREFIX, "big");
    const got: [number, boolean][] = [];
    const f = await log.follow(1, (e: LogEntry, live) => got.push([e.seq, live]));
    expect(got.length).toBe(ENTRIES);
    const next = ENTRIES + 1;
    await c.put(new RunKeys(PREFIX, "big").entry(next)).value(encodeEntry({ seq: next, fromStep: next * 10, body: { n: next } })).exec();
    for (let i = 0; i < 200 && got.length === ENTRIES; i++) await new Promise((r) => setTimeout(r, 25));
    await f.close();
    expect(got.map(([s]) => s)).toEqual(Array.from({ length: next }, (_, i) => i + 1));
    expect(got[next - 1]).toEqual([next, true]);
    expect(got.slice(0, ENTRIES).every(([, live]) => !live)).toBe(true);
  }, 60_000);

  it("lists the catalog without reading the logs", async () => {
    const { runs, revision } = await new RunCatalog(c, PREFIX).list();
    expect(runs).toEqual([
      { id: "a", configJson: '{"id":"a"}', closed: true },
      { id: "big", configJson: '{"id":"big"}', closed: false },
      { id: "big.x", configJson: '{"id":"big.x"}', closed: false },
      { id: "big0", configJson: '{"id":"big0"}', closed: false },
    ]);
    expect(BigInt(revision)).toBeGreaterThan(0n);
  }, 60_000);
});
