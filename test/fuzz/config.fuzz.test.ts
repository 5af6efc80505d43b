/**
 * Config fuzzing: valid run configs with one field made adversarial (wrong type, out of
 * range, malformed, unknown key), random JSON and pathological documents, sent through
 * CreateRun and through the config-file loader. Each must be INVALID_ARGUMENT with a
 * message naming the offending field, and none may create a run.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerConfig } from "../../src/config/load.js";
import { MixflowError } from "../../src/errors.js";
import type { MixflowServer } from "../../src/server/server.js";
import { makeDataDir, RawMixer, removeDir, runConfigFor, startServer } from "../security/helpers.js";

type Json = unknown;
const SEED = Number(process.env.MIXFLOW_FUZZ_SEED ?? 20240611);

/** For each field path, values that are invalid there. The message must name `needle`. */
const BAD: { path: (string | number)[]; needle: string; values: Json[]; schemaOnly?: false }[] = [
  { path: ["id"], needle: "id", values: ["", "-bad", "a b", "ü", 5, null, "x".repeat(200), ["a"]] },
  { path: ["batchSize"], needle: "batchSize", values: [0, -1, 1.5, "8", null, 2 ** 21, {}, [], true, 1e308] },
  { path: ["worldSize"], needle: "worldSize", values: [0, 3, 5, -2, "2", 70_000, 0.5] },
  { path: ["seed"], needle: "seed", values: [-1, 2 ** 32, 1.5, "s", null] },
  { path: ["maxSteps"], needle: "maxSteps", values: [-1, 0.5, 2 ** 41, "x"] },
  { path: ["seqLen"], needle: "seqLen", values: [0, -5, 2 ** 21, "1024"] },
  { path: ["evalProbes"], needle: "evalProbes", values: [0, 5000, null] },
  { path: ["aggregationTimeoutMs"], needle: "aggregationTimeoutMs", values: [-1, 1e12, "soon"] },
  { path: ["strategy"], needle: "strategy", values: [{ name: "" }, { name: "static", extra: 1 }, "static", null, { params: {} }] },
  { path: ["strategy", "params"], needle: "strategy.params", values: [7, [1, 2], "x"] },
  { path: ["objective"], needle: "objective", values: [{ zzz: 1 }, { alpha: -1 }, { alpha: "x" }, []] },
  { path: ["domains"], needle: "domains", values: [[], null, "a", [{}], 3] },
  { path: ["domains", 0, "name"], needle: "name", values: ["", "-x", 7, "a/b", "beta"] },
  { path: ["domains", 0, "train"], needle: "train", values: [{ format: "csv", paths: ["a"] }, { format: "jsonl", paths: [] }, { format: "jsonl" }, null, { format: "tokens", paths: ["data/alpha.jsonl"], dtype: "int8" }] },
  { path: ["domains", 0, "minWeight"], needle: "minWeight", values: [-0.1, 2, "x", 1.0000001] },
  { path: ["domains", 1, "maxWeight"], needle: "maxWeight", values: [-1, 1.5, null] },
  { path: ["domains", 2, "pinned"], needle: "pinned", values: ["yes", 1] },
  { path: ["bogusKey"], needle: "bogusKey", values: [1, null, {}] },
];
/** Valid to the schema, rejected when the run is opened (CreateRun only). */
const OPEN_TIME: { path: (string | number)[]; needle: string; values: Json[] }[] = [
  { path: ["domains", 0, "train", "paths"], needle: "train", values: [["data/missing.jsonl"], ["/dev/null/x"], ["data/*.parquet"], ["data/nothing/"]] },
  { path: ["strategy", "name"], needle: "strategy.name", values: ["no-such-strategy", "STATIC"] },
  { path: ["objective"], needle: "objective", values: [{ alpha: 0, beta: 0, gamma: 0 }] },
  { path: ["strategy", "params"], needle: "strategy.params", values: [{ weights: "x" }, { weights: { alpha: -1 } }, { weights: { alpha: "1" } }, { nope: 1 }] },
];

function mutate(cfg: Record<string, unknown>, path: (string | number)[], value: Json): Record<string, unknown> {
  const out = structuredClone(cfg);
  let cur: Record<string | number, unknown> = out;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return out;
}

const caseArb = (table: typeof BAD) =>
  fc.integer({ min: 0, max: table.length - 1 }).chain((i) => fc.record({ entry: fc.constant(table[i]!), value: fc.constantFrom(...table[i]!.values) }));

describe("config fuzzing", () => {
  let dir: string;
  let server: MixflowServer;
  let raw: RawMixer;

  beforeAll(async () => {
    dir = makeDataDir(20);
    server = await startServer(dir, { runs: [runConfigFor("keep")] });
    raw = new RawMixer(server.address);
  });
  afterAll(async () => {
    raw.close();
    await server.stop();
    removeDir(dir);
  });

  it("CreateRun: one adversarial field → INVALID_ARGUMENT naming it (600 cases)", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 5, arbitrary: caseArb(BAD) }, { weight: 1, arbitrary: caseArb(OPEN_TIME) }), fc.integer({ min: 0, max: 1e6 }), async ({ entry, value }, k) => {
        n++;
        const cfg = mutate(runConfigFor(`fz-${k}`), entry.path, value);
        const r = await raw.unary("CreateRun", { config_json: JSON.stringify(cfg) });
        expect(r.code, r.details).toBe(grpc.status.INVALID_ARGUMENT);
        expect(r.details, `${entry.path.join(".")} = ${JSON.stringify(value)}`).toContain(entry.needle);
      }),
      { numRuns: 600, seed: SEED },
    );
    expect(n).toBe(600);
    // Bounded by work: a case failing at open time has its data prepared in a worker thread
    // (~0.1-1 s to start on a loaded machine); 500 ms a case is the hang guard.
  }, 600 * 500);

  it("CreateRun: random JSON and pathological documents → INVALID_ARGUMENT (400 cases)", async () => {
    const pathological = fc.constantFrom(
      "[".repeat(100_000) + "]".repeat(100_000),
      `{"id":"a","domains":${"[".repeat(50_000)}`,
      JSON.stringify({ ...runConfigFor("deep"), strategy: { name: "static", params: JSON.parse("[".repeat(2000) + "]".repeat(2000)) } }),
      '{"__proto__":{"batchSize":8},"id":"p"}',
      '{"constructor":{"prototype":{"x":1}}}',
      "\uFEFF{}",
      "",
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json({ maxDepth: 4 }), fc.string({ maxLength: 80 }), pathological), async (text) => {
        const r = await raw.unary("CreateRun", { config_json: text });
        expect(r.code, r.details).toBe(grpc.status.INVALID_ARGUMENT);
        expect(r.details.length).toBeGreaterThan(10);
      }),
      { numRuns: 400, seed: SEED + 1 },
    );
  });

  it("no rejected config created a run, and prototype keys did not leak into objects", async () => {
    const list = await raw.unary("ListRuns", {});
    expect((list.response!.runs as { run_id: string }[]).map((r) => r.run_id)).toEqual(["keep"]);
    expect(({} as Record<string, unknown>).batchSize).toBeUndefined();
  });

  it("config loader: one adversarial field in a run of the file → INVALID_ARGUMENT naming runs.0.<field> (300 cases)", () => {
    const file = join(dir, "fuzz-config.json");
    fc.assert(
      fc.property(caseArb(BAD), ({ entry, value }) => {
        writeFileSync(file, JSON.stringify({ dataDir: "state", runs: [mutate(runConfigFor("f"), entry.path, value)] }));
        let err: unknown = null;
        try {
          loadServerConfig(file);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(MixflowError);
        expect((err as MixflowError).code).toBe("INVALID_ARGUMENT");
        expect((err as MixflowError).message).toContain("runs.0");
        expect((err as MixflowError).message).toContain(entry.needle.split(".").pop()!);
      }),
      { numRuns: 300, seed: SEED + 2 },
    );
  });

  it("config loader: adversarial server-level fields name the field", () => {
    const file = join(dir, "fuzz-server.json");
    const cases: [Record<string, unknown>, string][] = [
      [{ listen: "" }, "listen"],
      [{ limits: { maxRuns: 0 } }, "limits.maxRuns"],
      [{ limits: { reportsPerSecond: -1 } }, "limits.reportsPerSecond"],
      [{ limits: { maxStreamsPerConnection: "many" } }, "limits.maxStreamsPerConnection"],
      [{ auth: { adminToken: "short" } }, "auth.adminToken"],
      [{ auth: { runTokens: { "bad id": "0123456789abcdef0" } } }, "auth.runTokens"],
      [{ tls: { cert: "c.pem" } }, "tls.key"],
      [{ journal: { durability: "sometimes" } }, "journal.durability"],
      [{ runs: {} }, "runs"],
      [{ surprise: true }, "surprise"],
    ];
    for (const [cfg, needle] of cases) {
      writeFileSync(file, JSON.stringify(cfg));
      expect(() => loadServerConfig(file), needle).toThrow(new RegExp(needle.replace(/\./g, "\\.")));
    }
    writeFileSync(file, "{ not json");
    expect(() => loadServerConfig(file)).toThrow(/is not valid JSON/);
  });
});
