/**
 * Fuzzing every Mixer RPC (fast-check): adversarial but well-typed requests (NaN/Inf and
 * negative losses, misaligned and huge buffers, enormous steps, unknown runs, domains and
 * ranks), arbitrary protobuf-shaped and random bytes through a grpc-js channel, and broken
 * gRPC framing on raw HTTP/2 streams (node:http2). 10,000 cases per run.
 *
 * The run under fuzz is fully served and reported before the fuzzing starts, so no input
 * can legitimately change its state: afterwards its journal (records and bytes), weights
 * and run info must be exactly as before, and every call must have ended with a status
 * that is the caller's fault or a normal answer — never INTERNAL, UNKNOWN or a hang.
 */
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MixflowServer } from "../../src/server/server.js";
import { DOMAINS, makeDataDir, METHODS, MIXER, RawMixer, removeDir, runConfigFor, startServer, type CallResult } from "../security/helpers.js";

const RUN = "fz";
const STEPS = 32;
/** Codes that mean a server bug or a hang, never a fair answer to bad input. */
const BUG_CODES = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);
const BATCH = 50;
const SEED = Number(process.env.MIXFLOW_FUZZ_SEED ?? 20240611);

// ---------------------------------------------------------------------------------------
// Arbitraries

const runIdArb = fc.oneof(
  fc.constantFrom(RUN, "fz-closed", "", "nope", "x".repeat(129), "../etc/passwd", "fz\u0000"),
  fc.string({ maxLength: 40 }),
);
/** Run ids for CloseRun and WatchWeights: never the open run (closing it, or watching it forever, is valid). */
const notOpenRunArb = runIdArb.filter((r) => r !== RUN);
const u64Arb = fc.oneof(
  fc.integer({ min: 0, max: STEPS + 8 }),
  fc.constantFrom(STEPS, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER, "9007199254740993", "18446744073709551615", -1, -(2 ** 40)),
);
const u32Arb = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(3, 7, 8, 16, 2 ** 31, 2 ** 32 - 1, -1));
const lossArb = fc.oneof(fc.float({ noDefaultInfinity: false, noNaN: false }), fc.constantFrom(NaN, Infinity, -Infinity, -1, -0, 3.4e38, 1e-45));
const floatsArb = fc.oneof(
  fc.array(lossArb, { maxLength: 9 }).map((xs) => Buffer.from(new Float32Array(xs).buffer)),
  fc.uint8Array({ maxLength: 19 }).map((b) => Buffer.from(b)),
  fc.constantFrom(Buffer.alloc(0), Buffer.alloc(400_000, 0x7f)),
);
const domainLossesArb = fc.oneof(
  fc.array(fc.record({ domain: u32Arb, loss_sum: fc.oneof(lossArb, fc.double()), count: fc.oneof(u64Arb, fc.integer({ min: -3, max: 5 })) }), { maxLength: 6 }),
  fc.constant(Array.from({ length: 3_000 }, (_, i) => ({ domain: i % 4, loss_sum: 1, count: 1 }))),
);
const evalLossesArb = fc.dictionary(fc.oneof(fc.constantFrom(...DOMAINS, "zzz", ""), fc.string({ maxLength: 10 })), fc.oneof(lossArb, fc.double()), { maxKeys: 4 });

/** A request of the right message type with adversarial field values. */
const semanticArb: fc.Arbitrary<{ method: string; req: Record<string, unknown> }> = fc.oneof(
  fc.record({ method: fc.constant("CreateRun"), req: fc.record({ config_json: fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 3 }), fc.constantFrom("{}", "[]", "null", "1e999", '{"id":"a"}', "[".repeat(5000))) }) }),
  fc.record({ method: fc.constantFrom("GetRun", "GetWeights"), req: fc.record({ run_id: runIdArb }) }),
  fc.record({ method: fc.constant("CloseRun"), req: fc.record({ run_id: notOpenRunArb }) }),
  fc.record({ method: fc.constant("ListRuns"), req: fc.constant({}) }),
  fc.record({ method: fc.constant("NextBatch"), req: fc.record({ run_id: runIdArb, step: u64Arb, rank: u32Arb, world_size: u32Arb }) }),
  fc.record({
    method: fc.constant("StreamBatches"),
    req: fc.record({ run_id: runIdArb, from_step: u64Arb, rank: u32Arb, world_size: u32Arb, prefetch: u32Arb, max_batches: fc.oneof(u64Arb, fc.constant(0)) }),
  }),
  fc.record({
    method: fc.constant("ReportSignals"),
    req: fc.record(
      { run_id: runIdArb, step: u64Arb, rank: u32Arb, world_size: u32Arb, sample_losses: floatsArb, domain_losses: domainLossesArb, eval_losses: evalLossesArb, reference_losses: floatsArb },
      { requiredKeys: ["run_id", "step"] },
    ),
  }),
  fc.record({ method: fc.constant("WatchWeights"), req: fc.record({ run_id: notOpenRunArb, after_version: u32Arb }) }),
);

/** Protobuf-shaped bytes: random field numbers with random (also invalid) wire types. */
const fieldArb = fc.record({
  field: fc.integer({ min: 1, max: 20 }),
  wire: fc.constantFrom(0, 1, 2, 5, 2, 0, 3, 4, 6, 7),
  varint: fc.oneof(fc.integer(), fc.constantFrom(-1, 2 ** 31, 2 ** 53)),
  bytes: fc.uint8Array({ maxLength: 24 }),
  len: fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 })),
});
const structuralArb = fc.record({
  method: fc.constantFrom(...METHODS.filter((m) => m !== "WatchWeights")),
  bytes: fc.oneof(
    fc.array(fieldArb, { maxLength: 8 }).map((fields) => {
      const w = protobuf.Writer.create();
      for (const f of fields) {
        w.uint32((f.field << 3) | f.wire);
        if (f.wire === 0) w.int64(f.varint);
        else if (f.wire === 1) w.fixed64(f.varint >>> 0);
        else if (f.wire === 5) w.fixed32(f.varint >>> 0);
        else if (f.wire === 2) {
          if (f.len !== null) w.uint32(f.len).bytes(Buffer.from(f.bytes)); // a length that lies
          else w.bytes(f.bytes);
        }
      }
      return Buffer.from(w.finish());
    }),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  ),
});

/** Broken gRPC framing: the 5-byte prefix (flag, big-endian length) and a body that disagrees. */
const frameArb = fc.record({
  method: fc.oneof(fc.constantFrom(...METHODS), fc.constantFrom("Nope", "")),
  compressed: fc.constantFrom(0, 0, 0, 1, 2, 255),
  declared: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(2 ** 31, 2 ** 32 - 1, 1 << 24)),
  body: fc.uint8Array({ maxLength: 48 }),
  cut: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 4 })),
  frames: fc.integer({ min: 1, max: 3 }),
  encoding: fc.constantFrom(undefined, "gzip", "identity", "bogus"),
});

function frameBytes(f: { compressed: number; declared: number; body: Uint8Array; cut: number | null; frames: number }): Buffer {
  const one = Buffer.alloc(5 + f.body.length);
  one[0] = f.compressed;
  one.writeUInt32BE(f.declared >>> 0, 1);
  Buffer.from(f.body).copy(one, 5);
  const all = Buffer.concat(Array.from({ length: f.frames }, () => one));
  return f.cut === null ? all : all.subarray(0, f.cut);
}

/** The server's max_receive_message_length (the default limits.maxReceiveMessageBytes). */
const MAX_RECEIVE = 32 * 1024 * 1024;

/**
 * What the server must answer to a framed request body, read the way grpc-js reads it:
 * consecutive 5-byte prefixes (compressed flag, big-endian length) and bodies.
 *   - a prefix declaring more than the receive limit: RESOURCE_EXHAUSTED;
 *   - no complete message (prefix cut, body shorter than declared): UNIMPLEMENTED (grpc-js
 *     answers a unary or server-streaming call without its one request message so);
 *   - more than one complete message: UNIMPLEMENTED (these methods take exactly one);
 *   - exactly one: the handler's answer, which for an uncompressed body must equal what the
 *     same bytes get through a real grpc-js channel (`channel`), and for a body flagged as
 *     compressed (not valid gzip here) INVALID_ARGUMENT.
 */
type Framing = { kind: "status"; code: grpc.status } | { kind: "single"; compressed: boolean; body: Buffer };
function readFraming(bytes: Buffer): Framing {
  let pos = 0;
  const complete: { flag: number; body: Buffer }[] = [];
  while (pos + 5 <= bytes.length) {
    const len = bytes.readUInt32BE(pos + 1);
    if (len > MAX_RECEIVE) return { kind: "status", code: grpc.status.RESOURCE_EXHAUSTED };
    if (pos + 5 + len > bytes.length) break;
    complete.push({ flag: bytes[pos]!, body: bytes.subarray(pos + 5, pos + 5 + len) });
    pos += 5 + len;
  }
  if (complete.length !== 1) return { kind: "status", code: grpc.status.UNIMPLEMENTED };
  return { kind: "single", compressed: complete[0]!.flag !== 0, body: complete[0]!.body };
}

/** Send one raw HTTP/2 gRPC request; resolves with grpc-status (null if none came within 5 s). */
function rawHttp2(session: http2.ClientHttp2Session, path: string, body: Buffer, encoding: string | undefined): Promise<number | null> {
  return new Promise((resolve) => {
    const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" };
    if (encoding) headers["grpc-encoding"] = encoding;
    const req = session.request(headers);
    let status: number | null = null;
    const timer = setTimeout(() => {
      req.close();
      resolve(null);
    }, 5000);
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", () => undefined);
    req.on("close", () => {
      clearTimeout(timer);
      resolve(status);
    });
    req.on("error", () => undefined);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------

describe("fuzzing every RPC", () => {
  let dir: string;
  let server: MixflowServer;
  let raw: RawMixer;
  let before: { journal: { bytes: number; appends: number }; weights: CallResult; info: Record<string, unknown> };
  const codes = new Map<string, number>();
  let cases = 0;

  const note = (method: string, r: CallResult) => {
    cases++;
    const k = `${method} ${grpc.status[r.code]}`;
    codes.set(k, (codes.get(k) ?? 0) + 1);
  };

  beforeAll(async () => {
    dir = makeDataDir();
    server = await startServer(dir, {
      runs: [runConfigFor(RUN, { batchSize: 8, worldSize: 2, maxSteps: STEPS }), runConfigFor("fz-closed", { maxSteps: 4 })],
      limits: { reportsPerSecond: 1e9 },
    });
    raw = new RawMixer(server.address);
    // Serve and report every slice of every step, so that nothing a fuzzer sends can be new.
    for (let s = 0; s < STEPS; s++) {
      for (let r = 0; r < 2; r++) {
        expect((await raw.unary("NextBatch", { run_id: RUN, step: s, rank: r })).code).toBe(grpc.status.OK);
        const rep = await raw.unary("ReportSignals", { run_id: RUN, step: s, rank: r, sample_losses: Buffer.from(new Float32Array([1, 2, 3, 0.5]).buffer) });
        expect(rep.code, rep.details).toBe(grpc.status.OK);
      }
    }
    expect((await raw.unary("CloseRun", { run_id: "fz-closed" })).code).toBe(grpc.status.OK);
    await server.registry.get(RUN).idle();
    expect(server.registry.get(RUN).lastAggregated).toBe(STEPS - 1);
    const info = (await raw.unary("GetRun", { run_id: RUN })).response!;
    before = { journal: server.registry.journalStats(), weights: await raw.unary("GetWeights", { run_id: RUN }), info };
  });

  afterAll(async () => {
    raw?.close();
    await server?.stop();
    removeDir(dir);
  });

  it("adversarial well-typed requests: 6,000 cases, each answered with a fair status", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(semanticArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const results = await Promise.all(
          batch.map(async ({ method, req }) => {
            let bytes: Buffer;
            try {
              bytes = MIXER[method]!.requestSerialize(req);
            } catch {
              bytes = Buffer.from(JSON.stringify(req) ?? "").subarray(0, 64); // unencodable: send garbage instead
            }
            const r = await raw.call(method, bytes, { deadlineMs: 10_000 });
            note(method, r);
            return { method, req, r };
          }),
        );
        for (const { method, r } of results) {
          expect(BUG_CODES.has(r.code), `${method} → ${grpc.status[r.code]}: ${r.details}`).toBe(false);
          if (r.code !== grpc.status.OK) expect(r.details.length).toBeGreaterThan(0);
          // A report for the fuzzed run can only ever be a duplicate of what was recorded.
          if (method === "ReportSignals" && r.code === grpc.status.OK) expect(r.response!.duplicate).toBe(true);
        }
      }),
      { numRuns: 6000 / BATCH, seed: SEED, endOnFailure: true },
    );
  });

  it("protobuf-shaped and random bytes: 3,000 cases, undecodable ones are INVALID_ARGUMENT", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(structuralArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const results = await Promise.all(batch.map(async ({ method, bytes }) => ({ method, bytes, r: await raw.call(method, bytes, { deadlineMs: 10_000 }) })));
        for (const { method, bytes, r } of results) {
          note(method, r);
          expect(BUG_CODES.has(r.code), `${method} ${bytes.toString("hex")} → ${grpc.status[r.code]}: ${r.details}`).toBe(false);
          let decodes = true;
          try {
            MIXER[method]!.requestDeserialize(bytes);
          } catch {
            decodes = false;
          }
          if (!decodes) {
            expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
            expect(r.details).toContain(`not a valid mixflow.v1 ${method} message`);
          }
        }
      }),
      { numRuns: 3000 / BATCH, seed: SEED + 1, endOnFailure: true },
    );
  });

  it("broken gRPC framing on raw HTTP/2 streams: 1,000 cases, each gets the status its framing calls for", async () => {
    const session = http2.connect(`http://${server.address}`);
    const sessionErrors: string[] = [];
    session.on("error", (e) => sessionErrors.push(String(e)));
    const seen = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          const statuses = await Promise.all(batch.map((f) => rawHttp2(session, `/mixflow.v1.Mixer/${f.method}`, frameBytes(f), f.encoding)));
          for (const [i, s] of statuses.entries()) {
            cases++;
            const f = batch[i]!;
            const what = JSON.stringify({ ...f, body: Buffer.from(f.body).toString("hex") });
            expect(s, what).not.toBeNull();
            let want: grpc.status;
            if (f.method === "Nope" || f.method === "") want = grpc.status.UNIMPLEMENTED;
            else {
              const framing = readFraming(frameBytes(f));
              if (framing.kind === "status") want = framing.code;
              else if (framing.compressed) want = grpc.status.INVALID_ARGUMENT;
              else want = (await raw.call(f.method, framing.body, { deadlineMs: 10_000 })).code;
            }
            expect(grpc.status[s!], what).toBe(grpc.status[want]);
            seen.set(grpc.status[s!]!, (seen.get(grpc.status[s!]!) ?? 0) + 1);
          }
        }),
        { numRuns: 1000 / BATCH, seed: SEED + 2, endOnFailure: true },
      );
    } finally {
      session.close();
    }
    expect(sessionErrors, "the raw HTTP/2 session failed").toEqual([]);
    // The cases reached every branch of the framing rules.
    expect([...seen.keys()].sort()).toEqual(["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED"]);
  });

  it("after 10,000 cases: server healthy, journal, weights and run unchanged, streams released", async () => {
    expect(cases).toBeGreaterThanOrEqual(10_000);
    expect(server.registry.journalStats()).toMatchObject(before.journal);
    const w = await raw.unary("GetWeights", { run_id: RUN });
    expect(w.response).toEqual(before.weights.response);
    expect((await raw.unary("GetRun", { run_id: RUN })).response).toEqual(before.info);
    // Still serving normally.
    const b = await raw.unary("NextBatch", { run_id: RUN, step: 3, rank: 1 });
    expect(b.code).toBe(grpc.status.OK);
    await new Promise((r) => setTimeout(r, 200));
    expect(server.streamStats().open).toBe(0);
    // Each RPC was reached with inputs it rejected and, where possible, with ones it accepted.
    for (const m of METHODS) expect([...codes.keys()].some((k) => k.startsWith(`${m} `) && !k.endsWith(" OK")), m).toBe(true);
  });
});
