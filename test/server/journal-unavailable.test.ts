/**
 * A journal that stops accepting writes (here: the file-size limit of the server process,
 * set with util-linux `prlimit`, so write() fails with EFBIG exactly as on a full or failing
 * disk) reaches clients as UNAVAILABLE with a message that says the journal failed and that
 * nothing was recorded — retryable — never as INTERNAL, which reporters treat as permanent.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, removeDir, runConfigFor } from "../security/helpers.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
/** Bytes any file of the server may grow to: room for start-up and some reports, then EFBIG. */
const FILE_LIMIT = 192 * 1024;

describe("journal unavailability", () => {
  it("a journal write failure is UNAVAILABLE with a message, never INTERNAL", async () => {
    const probe = spawnSync("prlimit", ["--version"]);
    if (probe.error) throw new Error("this test needs prlimit (Debian package util-linux): apt-get install util-linux");
    const dir = makeDataDir(300);
    const slots = 256;
    const cfg = {
      dataDir: "state",
      metrics: { enabled: false },
      journal: { durability: "fsync", checkpointEvery: 1_000_000 },
      runs: [runConfigFor("ju", { batchSize: slots, worldSize: 1 })],
    };
    writeFileSync(join(dir, "ju.json"), JSON.stringify(cfg));
    const proc = spawn(
      "prlimit",
      [`--fsize=${FILE_LIMIT}`, "--", process.execPath, "--import", "tsx", "src/cli/main.ts", "serve", "--config", join(dir, "ju.json"), "--listen", "127.0.0.1:0"],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on("exit", (c) => r(c)));
    try {
      const address = await new Promise<string>((res, rej) => {
        createInterface({ input: proc.stdout! }).once("line", (l) => res((JSON.parse(l) as { grpc: string }).grpc));
        void exited.then((c) => rej(new Error(`server exited with ${c}: ${stderr}`)));
      });
      const client = new MixflowClient(address, { deadlineMs: 20_000 });
      try {
        // Each report journals ~1.4 KiB of per-sample losses: the limit is reached within
        // FILE_LIMIT / 1.4 KiB reports; the bound below is twice that.
        const maxSteps = Math.ceil((2 * FILE_LIMIT) / 1400);
        let failure: grpc.ServiceError | null = null;
        let acked = 0;
        for (let step = 0; step < maxSteps && failure === null; step++) {
          try {
            await client.nextBatch("ju", step, 0);
            await client.reportSignals({ runId: "ju", step, rank: 0, sampleLosses: Float32Array.from({ length: slots }, (_, i) => 1 + ((step + i) % 97) / 50) });
            acked++;
          } catch (e) {
            failure = e as grpc.ServiceError;
          }
        }
        expect(acked).toBeGreaterThan(0);
        expect(failure, `no call failed within ${maxSteps} steps`).not.toBeNull();
        expect(failure!.code).toBe(grpc.status.UNAVAILABLE);
        expect(failure!.details).toMatch(/journal unavailable, nothing was recorded/);
        // Later calls that need the journal fail the same way: UNAVAILABLE, not INTERNAL.
        const again = await client.reportSignals({ runId: "ju", step: acked, rank: 0, sampleLosses: new Float32Array(slots).fill(1) }).then(
          () => null,
          (e: grpc.ServiceError) => e,
        );
        expect(again?.code).toBe(grpc.status.UNAVAILABLE);
        // The process is still up and answers what needs no journal.
        expect((await client.getRun("ju")).runId).toBe("ju");
      } finally {
        client.close();
      }
    } finally {
      proc.kill("SIGKILL");
      await exited;
      removeDir(dir);
    }
  }, 60_000);
});
