/**
 * Integers the decoder would silently change (issue 13, point 9): every uint64 request field
 * (steps, counts, max_batches) above 2^53 - 1 and every uint32 field (rank, world_size,
 * prefetch, after_version, a domain index) above 2^32 - 1 is refused with INVALID_ARGUMENT
 * naming the field and the value exactly as sent, through a real server and raw request
 * bytes (no client library rounding in between); nothing is served or recorded. The same
 * for the run config's step-like fields. 2^53 - 1 itself is exact and reaches the run.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { MIXER, RawMixer, makeDataDir, removeDir, runConfigFor, startServer } from "./helpers.js";
import type { MixflowServer } from "../../src/server/server.js";

let dir: string;
let server: MixflowServer;
let client: MixflowClient;
let raw: RawMixer;
beforeAll(async () => {
  dir = makeDataDir(50);
  server = await startServer(dir);
  client = new MixflowClient(server.address, { deadlineMs: 10_000 });
  raw = new RawMixer(server.address);
  await client.createRun(runConfigFor("r", { strategy: "exp3", worldSize: 1 }));
});
afterAll(async () => {
  raw.close();
  client.close();
  await server.stop(1000);
  removeDir(dir);
});

function varint(v: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

/** Field `field` as a varint of value `v` (appended after the rest: the last value wins). */
const field = (n: number, v: bigint): number[] => [...varint(BigInt(n * 8)), ...varint(v)];
const lenField = (n: number, body: number[]): number[] => [...varint(BigInt(n * 8 + 2)), ...varint(BigInt(body.length)), ...body];

interface Case {
  method: string;
  base: Record<string, unknown>;
  name: string;
  bytes: (v: bigint) => number[];
  width: 32 | 64;
}

/** One DomainLoss (domain 0, loss 1.0, count 1) with field `n` replaced by `v`. */
function domainLoss(n: 1 | 3, v: bigint): number[] {
  const loss = [0x11, ...Buffer.from(new Float64Array([1]).buffer)];
  return lenField(6, [...(n === 1 ? field(1, v) : field(1, 0n)), ...loss, ...(n === 3 ? field(3, v) : field(3, 1n))]);
}

const NB = { run_id: "r", rank: 0 };
const SB = { run_id: "r", rank: 0, max_batches: 1 };
const RS = { run_id: "r", rank: 0 };
const CASES: Case[] = [
  { method: "NextBatch", base: NB, name: "step", bytes: (v) => field(2, v), width: 64 },
  { method: "NextBatch", base: { run_id: "r", step: 0 }, name: "rank", bytes: (v) => field(3, v), width: 32 },
  { method: "NextBatch", base: { ...NB, step: 0 }, name: "world_size", bytes: (v) => field(4, v), width: 32 },
  { method: "StreamBatches", base: SB, name: "from_step", bytes: (v) => field(2, v), width: 64 },
  { method: "StreamBatches", base: { run_id: "r", max_batches: 1 }, name: "rank", bytes: (v) => field(3, v), width: 32 },
  { method: "StreamBatches", base: SB, name: "world_size", bytes: (v) => field(4, v), width: 32 },
  { method: "StreamBatches", base: SB, name: "prefetch", bytes: (v) => field(5, v), width: 32 },
  { method: "StreamBatches", base: { run_id: "r", rank: 0 }, name: "max_batches", bytes: (v) => field(6, v), width: 64 },
  { method: "ReportSignals", base: { ...RS, domain_losses: [{ domain: 0, loss_sum: 1, count: 1 }] }, name: "step", bytes: (v) => field(2, v), width: 64 },
  { method: "ReportSignals", base: { run_id: "r", step: 0, domain_losses: [{ domain: 0, loss_sum: 1, count: 1 }] }, name: "rank", bytes: (v) => field(3, v), width: 32 },
  { method: "ReportSignals", base: { ...RS, step: 0 }, name: "domain_losses.count", bytes: (v) => domainLoss(3, v), width: 64 },
  { method: "ReportSignals", base: { ...RS, step: 0 }, name: "domain_losses.domain", bytes: (v) => domainLoss(1, v), width: 32 },
  { method: "WatchWeights", base: { run_id: "r" }, name: "after_version", bytes: (v) => field(2, v), width: 32 },
];

describe("integers beyond what decodes exactly", () => {
  it("every uint64 field above 2^53 - 1 and uint32 field above 2^32 - 1 is INVALID_ARGUMENT naming the field and the exact value", async () => {
    const seen: string[] = [];
    for (const c of CASES) {
      const values = c.width === 64 ? [2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n] : [2n ** 32n, 2n ** 40n + 3n, 2n ** 64n - 1n];
      for (const v of values) {
        const req = Buffer.concat([MIXER[c.method]!.requestSerialize(c.base), Buffer.from(c.bytes(v))]);
        const r = await raw.call(c.method, req, { deadlineMs: 5000 });
        const what = `${c.method}.${c.name} = ${v}`;
        expect(r.code, `${what}: ${r.details}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(r.details, what).toContain(`${c.name}: ${v} `);
        expect(r.messages, what).toBe(0);
        seen.push(what);
      }
    }
    expect(seen).toHaveLength(CASES.length * 3);
    // Nothing was served or recorded.
    const info = await client.getRun("r");
    expect(info.frontier).toBe(-1);
    expect(info.lastAggregatedStep).toBe(-1);
  });

  it("2^53 - 1 is exact: it reaches the run (refused there as past the lookahead, not as malformed)", async () => {
    const req = Buffer.concat([MIXER.NextBatch!.requestSerialize(NB), Buffer.from(field(2, 2n ** 53n - 1n))]);
    const r = await raw.call("NextBatch", req);
    expect(r.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(r.details).toContain("step 9007199254740991 is");
    expect(r.details).toContain("maxLookahead");
  });

  it("run config fields: lookahead, steps and token ids beyond their range are refused naming the field", async () => {
    for (const [key, value, name] of [
      ["maxLookahead", 2 ** 53 + 2, "maxLookahead"],
      ["maxSteps", 2 ** 60, "maxSteps"],
      ["seed", 2 ** 53, "seed"],
    ] as const) {
      const e = await client.createRun({ ...runConfigFor(`big-${key}`), [key]: value }).then(() => null, (x: grpc.ServiceError) => x);
      expect(e?.code, key).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e?.details, key).toContain(name);
    }
    const tokens = { ...runConfigFor("big-eos"), seqLen: 8, domains: [{ name: "t", train: { format: "tokens", paths: ["data/alpha.jsonl"], mode: "documents", eosToken: 2 ** 53 + 2 } }] };
    const e = await client.createRun(tokens).then(() => null, (x: grpc.ServiceError) => x);
    expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e?.details).toContain("eosToken");
  });
});
