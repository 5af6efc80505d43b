/**
 * Shutdown under load and cut-off clients.
 * - SIGTERM to a `mixflow serve` child (durability fsync) while 8 ranks fetch and report:
 *   it exits 0, and after a restart on the same data dir every report that had been
 *   acknowledged is known: re-sending it is acknowledged as a duplicate.
 * - A client process killed with open streams frees them: the server's open stream count
 *   returns to 0.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, removeDir, runConfigFor, startServer } from "../security/helpers.js";
import { spawnServer } from "./child-server.js";

const RANKS = 8;
const losses = (step: number, rank: number) => [1 + step / 1000, 2 + rank / 10];

describe("shutdown and cut-off clients", () => {
  it("SIGTERM under load loses no acknowledged report", async () => {
    const dir = makeDataDir(500);
    try {
      const cfg = {
        dataDir: "state",
        metrics: { enabled: false },
        journal: { durability: "fsync" },
        // No aggregation timeout within the test: a step some rank never reported stays open.
        runs: [{ ...runConfigFor("sd", { batchSize: RANKS * 2, worldSize: RANKS }), aggregationTimeoutMs: 3_600_000 }],
      };
      writeFileSync(join(dir, "sd.json"), JSON.stringify(cfg));
      const first = await spawnServer(join(dir, "sd.json"));
      const client = new MixflowClient(first.address, { deadlineMs: 10_000 });
      const acked: { step: number; rank: number }[] = [];
      let failures = 0;
      const rank = async (r: number) => {
        for (let step = 0; ; step++) {
          try {
            await client.nextBatch("sd", step, r);
            await client.reportSignals({ runId: "sd", step, rank: r, sampleLosses: losses(step, r) });
            acked.push({ step, rank: r });
          } catch {
            failures++;
            return;
          }
        }
      };
      const ranks = Array.from({ length: RANKS }, (_, r) => rank(r));
      // Kill once enough work is acknowledged (bounded by work, not by a wall-clock wait).
      while (acked.length <= RANKS * 5 && failures === 0) await new Promise((res) => setTimeout(res, 20));
      const ackedBefore = acked.length;
      first.proc.kill("SIGTERM");
      await Promise.all(ranks);
      expect(await first.exited).toBe(0);
      client.close();
      expect(ackedBefore).toBeGreaterThan(RANKS * 5);
      expect(failures).toBe(RANKS); // every rank was stopped by the shutdown, none by anything else

      const second = await spawnServer(join(dir, "sd.json"));
      const again = new MixflowClient(second.address, { deadlineMs: 10_000 });
      try {
        for (const { step, rank: r } of acked) {
          const res = await again.reportSignals({ runId: "sd", step, rank: r, sampleLosses: losses(step, r) });
          expect(res.duplicate, `step ${step} rank ${r}`).toBe(true);
        }
        // And a report that differs from the acknowledged one is refused, not overwritten,
        // while its step still waits for other ranks; once a step is aggregated, a differing
        // re-report (a resumed trainer's losses) is acknowledged as a duplicate and changes
        // nothing. Which steps are which follows from what was acknowledged before the kill.
        const ranksPerStep = new Map<number, number>();
        for (const a of acked) ranksPerStep.set(a.step, (ranksPerStep.get(a.step) ?? 0) + 1);
        const open = acked.filter((a) => ranksPerStep.get(a.step)! < RANKS);
        const closed = acked.filter((a) => ranksPerStep.get(a.step) === RANKS);
        expect(open.length + closed.length).toBe(acked.length);
        for (const { step, rank: r } of open) {
          await expect(again.reportSignals({ runId: "sd", step, rank: r, sampleLosses: [9, 9] })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
        }
        expect(closed.length, "steps every rank reported before the kill").toBeGreaterThan(0);
        const { step, rank: r } = closed[closed.length - 1]!;
        const stale = await again.reportSignals({ runId: "sd", step, rank: r, sampleLosses: [9, 9] });
        expect(stale.duplicate, `aggregated step ${step} rank ${r}`).toBe(true);
      } finally {
        again.close();
        second.proc.kill("SIGTERM");
        expect(await second.exited).toBe(0);
      }
    } finally {
      removeDir(dir);
    }
  }, 90_000);

  it("a client killed mid-stream frees its streams", async () => {
    const dir = makeDataDir(200);
    const server = await startServer(dir, { runs: [runConfigFor("cut", { batchSize: 4, worldSize: 2 })] });
    try {
      const root = resolve(fileURLToPath(import.meta.url), "../../..");
      const child = spawn(process.execPath, ["--import", "tsx", "test/load/stream-child.ts", server.address, "cut"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
      await new Promise<void>((res) => createInterface({ input: child.stdout! }).once("line", () => res()));
      expect(server.streamStats()).toEqual({ open: 6, connections: 1 });
      child.kill("SIGKILL");
      const deadline = Date.now() + 10_000;
      while (server.streamStats().open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(server.streamStats()).toEqual({ open: 0, connections: 0 });
      // The server still serves.
      const c = new MixflowClient(server.address);
      expect((await c.nextBatch("cut", 0, 1)).slots).toBe(2);
      c.close();
    } finally {
      await server.stop();
      removeDir(dir);
    }
  }, 60_000);
});
