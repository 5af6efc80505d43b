/**
 * Data identity through a real server: a run's data files are fingerprinted at creation;
 * a file changed between restarts (appended line, or rewritten with the same size and
 * mtime) refuses that run at recovery, naming the file and the choices, while the other
 * runs recover and serve the same batches; restoring the file brings the run back, even
 * across a checkpoint taken while it was refused; `replay verify` reports the change; a
 * journal without fingerprints (older mixflow) still recovers.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { Journal } from "../../src/journal/index.js";
import { EventType } from "../../src/runs/events.js";
import { replayCommand } from "../../src/cli/replay.js";
import { makeDataDir, removeDir, startServer } from "../security/helpers.js";
import type { MixflowServer } from "../../src/server/server.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function run(id: string, domains: string[]): Record<string, unknown> {
  return {
    id,
    batchSize: 8,
    worldSize: 1,
    seed: 5,
    strategy: { name: "exp3", params: { warmupSteps: 0 } },
    domains: domains.map((name) => ({ name, train: { format: "jsonl", paths: [`data/${name}.jsonl`] } })),
  };
}

const RUNS = [run("changed", ["alpha", "beta"]), run("other", ["beta", "gamma"])];

async function up(dir: string): Promise<{ server: MixflowServer; client: MixflowClient; down(): Promise<void> }> {
  const server = await startServer(dir, { runs: RUNS, journal: { durability: "fsync", keepHistory: false } });
  const client = new MixflowClient(server.address, { deadlineMs: 10_000 });
  return {
    server,
    client,
    async down() {
      client.close();
      await server.stop(1000);
    },
  };
}

async function texts(c: MixflowClient, runId: string, steps: number): Promise<string[]> {
  const out: string[] = [];
  for (let s = 0; s < steps; s++) out.push(JSON.stringify((await c.nextBatch(runId, s)).text));
  return out;
}

async function refusal(c: MixflowClient, runId: string): Promise<grpc.ServiceError | null> {
  return c.getRun(runId).then(
    () => null,
    (e: grpc.ServiceError) => e,
  );
}

async function verifyOutput(dir: string, runId: string): Promise<{ out: string; code: number }> {
  const write = process.stdout.write.bind(process.stdout);
  let out = "";
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  const before = process.exitCode;
  try {
    await replayCommand(["verify", "--journal", path.join(dir, "state"), "--run", runId]);
  } finally {
    process.stdout.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, code };
}

describe("data fingerprints", () => {
  it("an appended line refuses that run at recovery with the file named; the other run recovers; restoring the file brings it back", async () => {
    const dir = makeDataDir(100);
    cleanup.push(() => removeDir(dir));
    const file = path.join(dir, "data", "alpha.jsonl");
    let s = await up(dir);
    const first = await texts(s.client, "changed", 10);
    const other = await texts(s.client, "other", 10);
    await s.down();

    const original = fs.readFileSync(file);
    fs.appendFileSync(file, JSON.stringify({ text: "one more line" }) + "\n");
    s = await up(dir);
    const e = await refusal(s.client, "changed");
    expect(e?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e?.details).toContain(file);
    expect(e?.details).toContain(`size changed from ${original.length} to`);
    expect(e?.details).toContain("Restore the file");
    expect(e?.details).toContain("start a new run");
    expect(e?.details).not.toContain("one more line");
    expect(await texts(s.client, "other", 10)).toEqual(other);
    expect((await verifyOutput(dir, "changed")).code).toBe(1);
    expect((await verifyOutput(dir, "changed")).out).toContain(file);
    // A checkpoint while the run is refused must not drop its records.
    await s.server.registry.checkpoint();
    await s.down();

    fs.writeFileSync(file, original);
    s = await up(dir);
    expect(await texts(s.client, "changed", 10)).toEqual(first);
    const v = await verifyOutput(dir, "changed");
    expect(v.code).toBe(0);
    await s.down();
  });

  it("a file rewritten with the same size and mtime is detected", async () => {
    const dir = makeDataDir(100);
    cleanup.push(() => removeDir(dir));
    const file = path.join(dir, "data", "alpha.jsonl");
    const T = 1_700_000_000; // whole seconds: utimes round-trips them exactly
    fs.utimesSync(file, T, T);
    let s = await up(dir);
    await texts(s.client, "changed", 3);
    await s.down();
    const st = fs.statSync(file);
    const buf = fs.readFileSync(file);
    const i = buf.indexOf("sample 7");
    buf.write("sample 8", i); // same length
    fs.writeFileSync(file, buf);
    fs.utimesSync(file, T, T);
    expect(fs.statSync(file).mtimeMs).toBe(st.mtimeMs);
    s = await up(dir);
    const e = await refusal(s.client, "changed");
    expect(e?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e?.details).toContain(`${file}: content changed (same size`);
    await s.down();
  });

  it("a journal written without fingerprints (older mixflow) still recovers", async () => {
    const dir = makeDataDir(100);
    cleanup.push(() => removeDir(dir));
    let s = await up(dir);
    const first = await texts(s.client, "changed", 5);
    await s.down();
    // Rewrite the journal as an older mixflow wrote it: creation records without `data`.
    const jdir = path.join(dir, "state", "journal");
    const recs: { type: number; payload: Uint8Array }[] = [];
    for await (const r of Journal.scan(jdir, { from: "all" })) {
      if (r.type === EventType.RunCreated || r.type === EventType.Snapshot) {
        const body = JSON.parse(Buffer.from(r.payload).toString("utf8")) as Record<string, unknown>;
        expect(body.data).toBeDefined();
        delete body.data;
        recs.push({ type: r.type, payload: Buffer.from(JSON.stringify(body)) });
      } else recs.push({ type: r.type, payload: Buffer.from(r.payload) });
    }
    fs.rmSync(jdir, { recursive: true });
    const { journal } = await Journal.open({ dir: jdir, durability: "fsync" });
    await journal.appendMany(recs);
    await journal.close();
    fs.appendFileSync(path.join(dir, "data", "gamma.jsonl"), JSON.stringify({ text: "unchecked" }) + "\n");
    s = await up(dir);
    expect(await texts(s.client, "changed", 5)).toEqual(first);
    expect((await verifyOutput(dir, "changed")).out).toContain("without data fingerprints");
    await s.down();
  });
});
