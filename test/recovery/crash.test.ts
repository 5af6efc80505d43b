/**
 * Crash recovery with a real server process: two ranks stream and report while the server
 * is killed with SIGKILL at random points of the work (20 times: after a seeded random number
 * of batches received and reports acknowledged); after each restart on the same data
 * dir, every report the clients saw acknowledged is in the recovered state, every batch
 * served before the crash is byte-identical, and versions are neither lost nor duplicated.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient, type Batch } from "../../src/client/index.js";
import { bundleCli, bundleDir, PROTO_DIR } from "../helpers/bundle.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";

let cli: string;
beforeAll(async () => {
  fs.mkdirSync(bundleDir, { recursive: true });
  cli = await bundleCli(path.join(bundleDir, `crash-${process.pid}.mjs`));
});
afterAll(() => fs.rmSync(cli, { force: true }));

/**
 * Hang guards, not speed bounds: the test is bounded by its work (CRASHES lives of a few
 * dozen events each), so a loaded machine makes it slower, never red. One life (start,
 * checks, streaming until the kill) gets LIFE_GUARD_MS; the whole test CRASHES of them.
 */
const CRASHES = 20;
const START_GUARD_MS = 60_000;
const LIFE_GUARD_MS = 120_000;

function start(cfgPath: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [cli, "serve", "--config", cfgPath], {
    env: { ...process.env, MIXFLOW_PROTO_DIR: PROTO_DIR },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve({ child, address: (JSON.parse(out.slice(0, nl)) as { grpc: string }).grpc });
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${err}`)));
    // A server that neither listens nor exits would otherwise surface as a test timeout.
    setTimeout(() => reject(new Error(`server did not start within ${START_GUARD_MS / 1000} s: ${err}`)), START_GUARD_MS).unref();
  });
}

const sha = (b: Batch): string => createHash("sha1").update(b.text!.data).update(b.slotDomains).digest("hex") + b.digest;

/** A small seeded generator (mulberry32): the kill points and samples replay from the logged seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Acked {
  step: number;
  rank: number;
  losses: Float32Array;
}

/**
 * What a client may see when the server is SIGKILLed under it: the batch iterator (no
 * retries) gives up naming the stream, and a unary report fails UNAVAILABLE. Anything
 * else (or any error before the kill) fails the test.
 */
function expectCrashError(e: unknown, killed: boolean, what: string): string {
  expect(killed, `${what} failed before the server was killed: ${String(e)}`).toBe(true);
  const code = (e as { code?: number }).code;
  if (code === undefined) {
    expect(String(e), what).toMatch(/lost the batch stream of run "r1" at step \d+ and 0 reconnects failed/);
    return "stream-lost";
  }
  expect([grpc.status.UNAVAILABLE], `${what}: ${String(e)}`).toContain(code);
  return grpc.status[code]!;
}

describe("kill -9 while two ranks stream and report", () => {
  it(`loses no acknowledged signal, no version, and re-serves identical batches (${CRASHES} crashes at random points of the work)`, async () => {
    const seed = Number(process.env.MIXFLOW_CRASH_SEED ?? 20261201);
    const rand = rng(seed);
    const dir = tmpDir("mixflow-crash-");
    const cfgPath = path.join(dir, "mixflow.json");
    const run = runConfigFor(dir, { maxSteps: 0, strategy: { name: "exp3", params: { warmupSteps: 0 } } });
    fs.writeFileSync(
      cfgPath,
      JSON.stringify({ dataDir: "state", listen: "127.0.0.1:0", metrics: { enabled: false }, journal: { durability: "fsync", checkpointEvery: 200 }, runs: [run] }),
    );
    const served = new Map<string, string>(); // "step:rank" -> hash of bytes
    let servedThisLife = new Set<string>();
    const acked: Acked[] = [];
    const versionSeen = new Map<number, number>(); // version id -> a step that used it
    const nextStep = [0, 0];
    const errors = new Map<string, number>();
    let events = 0;
    // Bounded by work: CRASHES lives; each is killed after a random number of client events
    // (a batch received or a report acknowledged, both ranks together), so a kill lands
    // anywhere in the serve/report/journal cycle, and the check after each restart is O(1
    // life): every batch of the last life plus a fixed-size sample of older ones.
    for (let crashes = 0; crashes < CRASHES; crashes++) {
      const srv = await start(cfgPath);
      const client = new MixflowClient(srv.address, { deadlineMs: LIFE_GUARD_MS });
      // 1. Everything from before the crash survived.
      if (crashes > 0) {
        const w = await client.getWeights("r1");
        const ids = w.versions.map((v) => v.version);
        expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
        for (const [id] of versionSeen) expect(ids).toContain(id);
        const older = [...served.keys()].filter((k) => !servedThisLife.has(k));
        const sample = Array.from({ length: Math.min(24, older.length) }, () => older[Math.floor(rand() * older.length)]!);
        for (const key of [...servedThisLife, ...sample]) {
          const [step, rank] = key.split(":").map(Number) as [number, number];
          expect(sha(await client.nextBatch("r1", step, rank, 2)), `batch ${key} after restart ${crashes}`).toBe(served.get(key));
        }
        servedThisLife = new Set<string>();
        for (const a of acked.splice(0)) {
          const r = await client.reportSignals({ runId: "r1", step: a.step, rank: a.rank, worldSize: 2, sampleLosses: a.losses });
          expect(r.duplicate).toBe(true);
        }
      }
      // 2. Stream and report until killed after `killAfter` events.
      const killAfter = 6 + Math.floor(rand() * 60);
      let lifeEvents = 0;
      let killed = false;
      const tick = (): void => {
        events++;
        if (++lifeEvents === killAfter) {
          killed = true;
          srv.child.kill("SIGKILL");
        }
      };
      await Promise.all(
        [0, 1].map(async (rank) => {
          try {
            for await (const b of client.batches({ runId: "r1", rank, worldSize: 2, fromStep: nextStep[rank]!, prefetch: 2, maxRetries: 0 })) {
              served.set(`${b.step}:${rank}`, sha(b));
              servedThisLife.add(`${b.step}:${rank}`);
              versionSeen.set(b.version, b.step);
              tick();
              const losses = Float32Array.from(b.slotDomains, (d, i) => 1 + d * 0.5 + ((b.step + i) % 7) * 0.01);
              await client.reportSignals({ runId: "r1", step: b.step, rank, worldSize: 2, sampleLosses: losses });
              acked.push({ step: b.step, rank, losses });
              nextStep[rank] = b.step + 1;
              tick();
            }
            throw new Error(`rank ${rank}'s stream ended although the server was ${killed ? "killed" : "alive"}`);
          } catch (e) {
            const kind = expectCrashError(e, killed, `rank ${rank} in life ${crashes}`);
            errors.set(kind, (errors.get(kind) ?? 0) + 1);
          }
        }),
      );
      await new Promise<void>((r) => (srv.child.exitCode !== null || srv.child.signalCode !== null ? r() : srv.child.once("exit", () => r())));
      expect(srv.child.signalCode).toBe("SIGKILL");
      client.close();
    }
    console.log(JSON.stringify({ seed, crashes: CRASHES, events, batchesServed: served.size, versions: versionSeen.size, errors: Object.fromEntries(errors) }));
    expect(served.size).toBeGreaterThan(100);
    expect(versionSeen.size).toBeGreaterThan(2);
    expect([...errors.values()].reduce((a, b) => a + b, 0)).toBe(2 * CRASHES);
  }, CRASHES * LIFE_GUARD_MS);
});
