/**
 * Crash recovery with a real server process: two ranks stream and report while the server
 * is killed with SIGKILL at random moments (20+ times); after each restart on the same data
 * dir, every report the clients saw acknowledged is in the recovered state, every batch
 * served before the crash is byte-identical, and versions are neither lost nor duplicated.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
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
    setTimeout(() => reject(new Error(`server did not start within 30 s: ${err}`)), 30_000).unref();
  });
}

const sha = (b: Batch): string => createHash("sha1").update(b.text!.data).update(b.slotDomains).digest("hex") + b.digest;

interface Acked {
  step: number;
  rank: number;
  losses: Float32Array;
}

describe("kill -9 while two ranks stream and report", () => {
  it("loses no acknowledged signal, no version, and re-serves identical batches (20+ random crashes)", async () => {
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
    // Bounded in time, not in work per restart: the check after each restart is O(1 life)
    // (every batch of the last life + a fixed-size random sample of older ones), so a slow,
    // shared CI machine makes the test take longer rather than time out.
    const deadline = Date.now() + 150_000;
    let crashes = 0;
    while (crashes < 22 && Date.now() < deadline) {
      const srv = await start(cfgPath);
      const client = new MixflowClient(srv.address, { deadlineMs: 5000 });
      // 1. Everything from before the crash survived.
      if (crashes > 0) {
        const w = await client.getWeights("r1");
        const ids = w.versions.map((v) => v.version);
        expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
        for (const [id] of versionSeen) expect(ids).toContain(id);
        const older = [...served.keys()].filter((k) => !servedThisLife.has(k));
        const sample = Array.from({ length: Math.min(24, older.length) }, () => older[Math.floor(Math.random() * older.length)]!);
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
      // 2. Stream and report until killed at a random moment.
      const killAt = 80 + Math.random() * 400;
      const timer = setTimeout(() => srv.child.kill("SIGKILL"), killAt);
      await Promise.all(
        [0, 1].map(async (rank) => {
          try {
            for await (const b of client.batches({ runId: "r1", rank, worldSize: 2, fromStep: nextStep[rank]!, prefetch: 2, maxRetries: 0 })) {
              served.set(`${b.step}:${rank}`, sha(b));
              servedThisLife.add(`${b.step}:${rank}`);
              versionSeen.set(b.version, b.step);
              const losses = Float32Array.from(b.slotDomains, (d, i) => 1 + d * 0.5 + ((b.step + i) % 7) * 0.01);
              await client.reportSignals({ runId: "r1", step: b.step, rank, worldSize: 2, sampleLosses: losses });
              acked.push({ step: b.step, rank, losses });
              nextStep[rank] = b.step + 1;
            }
          } catch {
            // the server died under us: expected
          }
        }),
      );
      clearTimeout(timer);
      await new Promise<void>((r) => (srv.child.exitCode !== null ? r() : srv.child.once("exit", () => r())));
      client.close();
      crashes++;
    }
    console.log(JSON.stringify({ crashes, batchesServed: served.size, versions: versionSeen.size, seconds: Math.round((Date.now() - deadline + 150_000) / 1000) }));
    expect(crashes).toBeGreaterThanOrEqual(20);
    expect(served.size).toBeGreaterThan(100);
    expect(versionSeen.size).toBeGreaterThan(2);
  }, 200_000);
});
