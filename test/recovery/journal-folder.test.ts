/**
 * The journal folder deleted or replaced under a live server (issue 13, point 9), through a
 * real server: reports stop being acknowledged (UNAVAILABLE, retryable, the message says
 * the folder was deleted or replaced), and the log says so once, instead of appends going on
 * into a file no directory names any more. After a restart over the deleted folder, a run
 * still in the config file starts from scratch with a warning naming the run and the folder.
 *
 * Bounded by work: the loop reports until the journal notices (it checks at most once a
 * second) or a cap of reports far above what a second holds on any machine.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { createLogger } from "../../src/util/log.js";
import { makeDataDir, removeDir, runConfigFor, startServer } from "../security/helpers.js";
import type { MixflowServer } from "../../src/server/server.js";

const CAP = 20_000;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Logged {
  level: string;
  msg: string;
  run?: string;
  detail?: string;
}

async function up(dir: string, cfg: Record<string, unknown> = {}): Promise<{ server: MixflowServer; client: MixflowClient; logs: Logged[] }> {
  const logs: Logged[] = [];
  const server = await startServer(dir, { journal: { durability: "fsync" }, ...cfg }, createLogger("warn", (l) => logs.push(JSON.parse(l) as Logged)));
  const client = new MixflowClient(server.address, { deadlineMs: 10_000 });
  cleanup.push(async () => {
    client.close();
    await server.stop(1000).catch(() => undefined);
  });
  return { server, client, logs };
}

/** Serve and report steps until a report fails; returns the error and how many were acknowledged. */
async function reportUntilRefused(c: MixflowClient, runId: string, from: number): Promise<{ err: grpc.ServiceError; acked: number }> {
  for (let step = from; step < from + CAP; step++) {
    const b = await c.nextBatch(runId, step, 0, 1);
    try {
      await c.reportSignals({ runId, step, rank: 0, worldSize: 1, sampleLosses: new Float32Array(b.slots).fill(1 + (step % 7) / 10) });
    } catch (e) {
      return { err: e as grpc.ServiceError, acked: step - from };
    }
  }
  throw new Error(`${CAP} reports acknowledged after the journal folder was removed`);
}

describe("the journal folder deleted or replaced under a live server", () => {
  for (const how of ["deleted", "replaced"] as const) {
    it(`${how}: reports become UNAVAILABLE naming the folder, and the log says so once`, async () => {
      const dir = makeDataDir(100);
      cleanup.push(() => removeDir(dir));
      const { client, logs } = await up(dir);
      await client.createRun(runConfigFor("j", { worldSize: 1, strategy: "exp3" }));
      const journal = path.join(dir, "state", "journal");
      for (let step = 0; step < 5; step++) {
        const b = await client.nextBatch("j", step, 0, 1);
        await client.reportSignals({ runId: "j", step, rank: 0, worldSize: 1, sampleLosses: new Float32Array(b.slots).fill(1) });
      }
      if (how === "deleted") {
        fs.rmSync(journal, { recursive: true });
      } else {
        // A restore from a copy: the same names, other files.
        fs.renameSync(journal, `${journal}.old`);
        fs.cpSync(`${journal}.old`, journal, { recursive: true });
      }
      const { err } = await reportUntilRefused(client, "j", 5);
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toContain(`the journal folder ${journal} was deleted or replaced while the server ran`);
      expect(err.details).toContain(how === "deleted" ? "no longer exists" : "is another file now");
      // Every later report too, and the log line comes once.
      const b = await client.nextBatch("j", 100, 0, 1).catch(() => null);
      if (b) await expect(client.reportSignals({ runId: "j", step: 100, rank: 0, worldSize: 1, sampleLosses: new Float32Array(b.slots).fill(1) })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const errors = logs.filter((l) => l.msg === "journal failed: no more writes are accepted until the server is restarted");
      expect(errors).toHaveLength(1);
      expect(errors[0]!.level).toBe("error");
      expect(errors[0]!.detail).toContain(`${journal} was deleted or replaced`);
    });
  }

  it("after a restart over a deleted journal, a run of the config file starts from scratch with a warning", async () => {
    const dir = makeDataDir(100);
    cleanup.push(() => removeDir(dir));
    const run = runConfigFor("cfg", { worldSize: 1 });
    const first = await up(dir, { runs: [run] });
    await first.client.nextBatch("cfg", 0, 0, 1);
    await first.server.stop(1000);
    const journal = path.join(dir, "state", "journal");
    fs.rmSync(journal, { recursive: true });
    const again = await up(dir, { runs: [run] });
    const warned = again.logs.filter((l) => l.msg === "run in the config file is not in the journal: starting it from scratch");
    expect(warned.map((l) => l.run)).toEqual(["cfg"]);
    expect(warned[0]!.detail).toContain(`the journal at ${journal} has no record of run "cfg"`);
    expect((await again.client.getRun("cfg")).frontier).toBe(-1);
  });
});
