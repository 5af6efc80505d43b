/**
 * The etcd version log against a real 3-member etcd: the fenced append, a contiguous log
 * under competing leaders, ordered watches, and the frontier rule (a reservation and a
 * commit never cross). Bounded by work: each test does a fixed number of operations; the
 * only clocks are etcd's own lease expiry and the timeouts that catch a hang.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { connectEtcd, parseClusterAddress } from "../../src/cluster/etcd-client.js";
import { BEHIND, EtcdVersionLog, type LogEntry } from "../../src/cluster/etcd-version-log.js";
import { Leadership, currentLeader } from "../../src/cluster/leadership.js";
import { isClusterError } from "../../src/cluster/errors.js";
import { EtcdCommitLog, type Proposal } from "../../src/cluster/etcd-commit-log.js";
import type { EntryBody } from "../../src/cluster/entries.js";
import type { VersionLog } from "../../src/runs/versions.js";
import { EtcdCluster } from "./etcd-harness.js";

let etcd: EtcdCluster;
const clients: Etcd3[] = [];
const PREFIX = "t/";

function client(): Etcd3 {
  const c = connectEtcd(parseClusterAddress(etcd.url));
  clients.push(c);
  return c;
}

function logFor(runId: string, c = client()): EtcdVersionLog {
  return new EtcdVersionLog(c, PREFIX, runId);
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject");
}

beforeAll(async () => {
  etcd = await EtcdCluster.start(3);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await etcd?.stop();
});

describe("etcd version log", () => {
  it("refuses a deposed leader's commit in etcd itself, even while it still believes it leads", async () => {
    const a = new Leadership(logFor("fence"), { nodeId: "a", address: "a:1" }, { ttlSeconds: 30 });
    await a.elected;
    expect((await a.append(1, (min) => ({ fromStep: min, body: { by: "a" } }))).seq).toBe(1);
    // Depose A as an expired lease would: its campaign key disappears; A has not noticed.
    const admin = client();
    await admin.delete().key(a.key!);
    expect(a.isLeader).toBe(true);
    const err = await errorOf(a.append(2, (min) => ({ fromStep: min, body: { by: "a" } })));
    expect(isClusterError(err, "FENCED")).toBe(true);
    expect(a.fencedByEtcd).toBe(1);
    expect(a.isLeader).toBe(false);
    const b = new Leadership(logFor("fence"), { nodeId: "b", address: "b:1" }, { ttlSeconds: 30 });
    await b.elected;
    expect(await currentLeader(logFor("fence"))).toEqual({ nodeId: "b", address: "b:1" });
    await b.append(2, (min) => ({ fromStep: min, body: { by: "b" } }));
    const { entries } = await logFor("fence").scan();
    expect(entries.map((e) => [e.seq, (e.body as { by: string }).by])).toEqual([[1, "a"], [2, "b"]]);
    await b.resign();
  });

  it("keeps one contiguous log without duplicates while would-be leaders come and go", async () => {
    const run = "churn";
    const target = 60;
    const written: LogEntry[] = [];
    let refused = 0;
    const candidate = async (id: string): Promise<void> => {
      const log = logFor(run);
      let term = 0;
      while (written.length < target) {
        const lead = new Leadership(log, { nodeId: id, address: `${id}:1` }, { ttlSeconds: 10 });
        await lead.elected;
        term++;
        // A leader learns the log's end from etcd, then writes a few entries and resigns.
        for (let k = 0; k < 3 && written.length < target; k++) {
          const { entries } = await log.scan();
          const seq = entries.length + 1;
          const e = await lead.append(seq, (min) => ({ fromStep: min, body: { id, term, k } }));
          written.push(e);
        }
        await lead.resign();
        // After resigning, a stale commit must be refused.
        const stale = await errorOf(lead.append(written.length + 1, (min) => ({ fromStep: min, body: { id, stale: true } })));
        if (isClusterError(stale, "FENCED")) refused++;
      }
    };
    await Promise.all(["a", "b", "c", "d"].map(candidate));
    const { entries } = await logFor(run).scan();
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: entries.length }, (_, i) => i + 1));
    expect(entries.length).toBe(written.length);
    const bodies = entries.map((e) => JSON.stringify(e.body));
    expect(new Set(bodies).size).toBe(bodies.length);
    expect(bodies.some((b) => b.includes("stale"))).toBe(false);
    expect(new Set(written.map((e) => JSON.stringify(e.body)))).toEqual(new Set(bodies));
    expect(refused).toBeGreaterThan(0);
  });

  it("delivers entries to a watch in order, exactly once, from any starting point", async () => {
    const run = "watch";
    const lead = new Leadership(logFor(run), { nodeId: "w", address: "w:1" }, { ttlSeconds: 10 });
    await lead.elected;
    const early: number[] = [];
    const f1 = await logFor(run).follow(1, (e) => early.push(e.seq));
    let late: number[] = [];
    let f2 = null;
    for (let seq = 1; seq <= 150; seq++) {
      await lead.append(seq, (min) => ({ fromStep: min + seq, body: seq }));
      if (seq === 70) f2 = await logFor(run).follow(1, (e) => late.push(e.seq));
    }
    const mid: number[] = [];
    const f3 = await logFor(run).follow(101, (e) => mid.push(e.seq));
    const until = async (xs: number[], n: number): Promise<void> => {
      for (let i = 0; i < 600 && xs.length < n; i++) await new Promise((r) => setTimeout(r, 50));
    };
    await until(early, 150);
    await until(late, 150);
    expect(early).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(late).toEqual(early);
    expect(mid).toEqual(Array.from({ length: 50 }, (_, i) => i + 101));
    late = [];
    await Promise.all([f1.close(), f2!.close(), f3.close()]);
    await lead.resign();
  });

  it("never lets a reservation and a commit cross: each entry starts past every step reserved before it", async () => {
    const run = "frontier";
    const lead = new Leadership(logFor(run), { nodeId: "l", address: "l:1" }, { ttlSeconds: 10 });
    await lead.elected;
    const applied: LogEntry[] = [];
    const follower = await logFor(run).follow(1, (e) => applied.push(e));
    const replicaLog = logFor(run);
    const reservations: { upTo: number; nextSeq: number }[] = [];
    let behind = 0;
    const replica = async (): Promise<void> => {
      for (let step = 0; step < 120; step++) {
        for (;;) {
          const nextSeq = follower.nextSeq;
          const r = await replicaLog.reserve(step, nextSeq);
          if (r === true) {
            reservations.push({ upTo: step, nextSeq });
            break;
          }
          expect(r).toBe(BEHIND);
          behind++;
          const want = nextSeq + 1;
          for (let i = 0; i < 400 && follower.nextSeq < want; i++) await new Promise((res) => setTimeout(res, 10));
        }
      }
    };
    const leader = async (): Promise<void> => {
      for (let seq = 1; seq <= 40; seq++) await lead.append(seq, (min) => ({ fromStep: min, body: seq }));
    };
    await Promise.all([replica(), leader()]);
    const { entries } = await replicaLog.scan();
    expect(entries).toHaveLength(40);
    for (const r of reservations) {
      for (const e of entries) if (e.seq >= r.nextSeq) expect(e.fromStep).toBeGreaterThan(r.upTo);
    }
    expect(reservations).toHaveLength(120);
    // The two raced (else this test proves nothing): some commits saw a moved frontier or
    // some reservations found an unseen entry.
    expect(behind + lead.frontierRetries).toBeGreaterThan(0);
    await follower.close();
    await lead.resign();
  });

  it("is the run's VersionLog in etcd: proposals land at consecutive entries past the frontier, and a deposed leader's write is refused with nothing written", async () => {
    const run = "commit-log";
    const lead = new Leadership(logFor(run), { nodeId: "c", address: "c:1" }, { ttlSeconds: 30 });
    await lead.elected;
    const commits = new EtcdCommitLog(lead, 1);
    const log: VersionLog<Proposal> = commits;
    const eval_ = (evalStep: number, min: number): { fromStep: number; body: EntryBody } => {
      const at = Math.max(min, evalStep);
      return { fromStep: at, body: { kind: "eval", evalStep: at, committedAtStep: evalStep - 1, strategyState: { n: evalStep } } };
    };
    await log.write([{ make: (min) => eval_(5, min) }, { make: (min) => eval_(6, min) }]);
    // A replica reserves up to step 40: the next proposal is placed past it.
    expect(await logFor(run).reserve(40, 3)).toBe(true);
    await log.write([{ make: (min) => eval_(7, min) }]);
    expect(commits.nextSeq).toBe(4);
    const { entries } = await logFor(run).scan();
    expect(entries.map((e) => [e.seq, e.fromStep])).toEqual([[1, 5], [2, 6], [3, 41]]);
    await client().delete().key(lead.key!);
    const err = await errorOf(log.write([{ make: (min) => eval_(50, min) }]));
    expect(isClusterError(err, "FENCED")).toBe(true);
    expect(commits.nextSeq).toBe(4);
    expect((await logFor(run).scan()).entries).toHaveLength(3);
  });
});
