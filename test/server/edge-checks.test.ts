/**
 * Edge checks from the outside client's findings (issue 13, point 9), through a real server:
 * - a truncated protobuf (`0a 05 61 62`: run_id declares 5 bytes, 2 follow) is refused as
 *   malformed, not read as run "ab";
 * - a report with the wrong world_size is refused naming the world sizes, not blamed on an
 *   aggregation timeout or on different values (re-reports of aggregated steps are
 *   acknowledged whatever their shape, since they change nothing).
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { MixflowServer } from "../../src/server/server.js";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, RawMixer, removeDir, runConfigFor, startServer } from "../security/helpers.js";

let server: MixflowServer | null = null;
let dir: string | null = null;
afterEach(async () => {
  await server?.stop(1000);
  server = null;
  if (dir) removeDir(dir);
  dir = null;
});

async function setup(): Promise<{ raw: RawMixer; client: MixflowClient }> {
  dir = makeDataDir(100);
  // A run whose id is the truncated prefix, so reading the prefix would succeed.
  server = await startServer(dir, { runs: [runConfigFor("ab", { batchSize: 8, worldSize: 2 })] });
  return { raw: new RawMixer(server.address), client: new MixflowClient(server.address, { deadlineMs: 10_000 }) };
}

describe("edge checks", () => {
  it("a truncated protobuf is INVALID_ARGUMENT naming the field, not a request for the prefix", async () => {
    const { raw, client } = await setup();
    try {
      const whole = await raw.call("GetRun", Buffer.from([0x0a, 0x02, 0x61, 0x62]));
      expect(whole.code).toBe(grpc.status.OK);
      for (const method of ["GetRun", "NextBatch", "GetWeights", "ReportSignals", "StreamBatches", "WatchWeights"]) {
        const r = await raw.call(method, Buffer.from([0x0a, 0x05, 0x61, 0x62]));
        expect(r.code, method).toBe(grpc.status.INVALID_ARGUMENT);
        expect(r.details, method).toMatch(/run_id: declares 5 bytes .* only 2 left \(truncated message\)/);
      }
      // Nested: an eval_losses map entry whose key runs past the entry.
      const entry = Buffer.from([0x0a, 0x09, 0x61, 0x6c]); // key "al…" declaring 9 bytes
      const req = Buffer.concat([Buffer.from([0x0a, 0x02, 0x61, 0x62, 0x3a, entry.length]), entry]);
      const nested = await raw.call("ReportSignals", req);
      expect(nested.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(nested.details).toMatch(/eval_losses\.field 1: declares 9 bytes/);
      expect((await client.getRun("ab")).lastAggregatedStep).toBe(-1);
    } finally {
      raw.close();
      client.close();
    }
  });

  it("a wrong world_size is named as such, never blamed on an aggregation timeout", async () => {
    const { raw, client } = await setup();
    try {
      for (const rank of [0, 1]) {
        await client.nextBatch("ab", 0, rank);
        await client.reportSignals({ runId: "ab", step: 0, rank, sampleLosses: new Float32Array(4).fill(1 + rank) });
      }
      await server!.registry.get("ab").idle();
      expect((await client.getRun("ab")).lastAggregatedStep).toBe(0);
      // An aggregated step changes nothing any more: a re-report with another world size (an
      // elastic restart re-training it) is acknowledged without recording, not refused.
      const late = await client.reportSignals({ runId: "ab", step: 0, rank: 1, worldSize: 4, sampleLosses: new Float32Array(2).fill(1) });
      expect(late.duplicate).toBe(true);
      // A step still aggregating: rank 0 of world_size 4 starts at the same slot as rank 0 of
      // world_size 2. Refused naming the world sizes (it was "reported with different values").
      await client.nextBatch("ab", 1, 0);
      await client.reportSignals({ runId: "ab", step: 1, rank: 0, sampleLosses: new Float32Array(4).fill(1) });
      const wrong = await client.reportSignals({ runId: "ab", step: 1, rank: 0, worldSize: 4, sampleLosses: new Float32Array(2).fill(1) }).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(wrong?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(wrong?.details).toMatch(/world_size 4 \(2 slots per rank\) does not match the other reports of step 1 .* world_size 2 \(4 slots per rank\)/);
      expect(wrong?.details).not.toMatch(/aggregation timeout|different values/);
    } finally {
      raw.close();
      client.close();
    }
  });
});
