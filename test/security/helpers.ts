/**
 * Shared scaffolding for the security, fuzz and load suites: temp data directories with
 * small JSONL domains, an in-process server on loopback, and raw unary/stream calls that
 * take any request object or any bytes and always resolve with a status.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { serverConfig, type ServerConfig } from "../../src/config/schema.js";
import { MixflowServer } from "../../src/server/server.js";
import { loadMixflowProto, mixerService } from "../../src/server/proto.js";
import { createLogger, type Logger } from "../../src/util/log.js";

export const DOMAINS = ["alpha", "beta", "gamma"] as const;

/** A temp directory holding `data/<domain>.jsonl` (n lines each). Caller removes it. */
export function makeDataDir(n = 200): string {
  const dir = mkdtempSync(join(tmpdir(), "mixflow-sec-"));
  mkdirSync(join(dir, "data"));
  for (const d of DOMAINS) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ text: `${d} sample ${i} ${"x".repeat(i % 13)}` }));
    writeFileSync(join(dir, "data", `${d}.jsonl`), lines.join("\n") + "\n");
  }
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A valid run config over the temp data (paths relative to the data dir). */
export function runConfigFor(id: string, o: { batchSize?: number; worldSize?: number; maxSteps?: number; strategy?: string } = {}): Record<string, unknown> {
  return {
    id,
    batchSize: o.batchSize ?? 8,
    worldSize: o.worldSize ?? 2,
    maxSteps: o.maxSteps ?? 0,
    seed: 3,
    aggregationTimeoutMs: 60_000,
    strategy: { name: o.strategy ?? "static" },
    domains: DOMAINS.map((name) => ({ name, train: { format: "jsonl", paths: [`data/${name}.jsonl`] } })),
  };
}

export const silentLogger: Logger = createLogger("silent");

/** Start a server on 127.0.0.1:0 over `dir` with the given config (validated by the real schema). */
export async function startServer(dir: string, cfg: Record<string, unknown> = {}, logger: Logger = silentLogger): Promise<MixflowServer> {
  const config: ServerConfig = serverConfig.parse({
    dataDir: "state",
    listen: "127.0.0.1:0",
    logLevel: "silent",
    metrics: { enabled: false },
    journal: { durability: "none" },
    ...cfg,
  });
  return MixflowServer.start({ config, baseDir: dir, logger });
}

const { grpcObject } = loadMixflowProto();
/** The Mixer service definition (serialisers for every method). */
export const MIXER = mixerService(grpcObject);
export const METHODS = Object.keys(MIXER);
export const UNARY = METHODS.filter((m) => !MIXER[m]!.responseStream);

export interface CallResult {
  code: grpc.status;
  details: string;
  /** The decoded response (unary) or messages received (streams). */
  response: Record<string, unknown> | null;
  messages: number;
}

/** A raw channel to the Mixer service, for calls with arbitrary requests. */
export class RawMixer {
  readonly client: grpc.Client;

  constructor(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    this.client = new grpc.Client(address, credentials, { "grpc.max_send_message_length": -1, ...options });
  }

  private md(token?: string): grpc.Metadata {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set("authorization", `Bearer ${token}`);
    return md;
  }

  private bytesOf(method: string, req: Record<string, unknown> | Buffer): Buffer {
    return Buffer.isBuffer(req) ? req : MIXER[method]!.requestSerialize(req);
  }

  /** A unary call; resolves with the status (never rejects). */
  unary(method: string, req: Record<string, unknown> | Buffer, o: { token?: string; deadlineMs?: number } = {}): Promise<CallResult> {
    const def = MIXER[method]!;
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        def.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        this.bytesOf(method, req),
        this.md(o.token),
        { deadline: Date.now() + (o.deadlineMs ?? 10_000) },
        (err, res) => {
          if (err) resolve({ code: err.code, details: err.details, response: null, messages: 0 });
          else resolve({ code: grpc.status.OK, details: "", response: def.responseDeserialize(res!) as Record<string, unknown>, messages: 1 });
        },
      );
    });
  }

  /** A server-streaming call read until its status or `deadlineMs`; resolves with the status. */
  stream(method: string, req: Record<string, unknown> | Buffer, o: { token?: string; deadlineMs?: number } = {}): Promise<CallResult> {
    const def = MIXER[method]!;
    return new Promise((resolve) => {
      const call = this.client.makeServerStreamRequest(
        def.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        this.bytesOf(method, req),
        this.md(o.token),
        { deadline: Date.now() + (o.deadlineMs ?? 10_000) },
      );
      let messages = 0;
      call.on("data", () => messages++);
      call.on("error", (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details, response: null, messages }));
      call.on("status", (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) resolve({ code: s.code, details: s.details, response: null, messages });
      });
    });
  }

  /** Unary or stream, by the method's shape. */
  call(method: string, req: Record<string, unknown> | Buffer, o: { token?: string; deadlineMs?: number } = {}): Promise<CallResult> {
    return MIXER[method]!.responseStream ? this.stream(method, req, o) : this.unary(method, req, o);
  }

  close(): void {
    this.client.close();
  }
}

/** The request of `method` aimed at `runId`, valid in shape. */
export function requestFor(method: string, runId: string): Record<string, unknown> {
  switch (method) {
    case "CreateRun":
      return { config_json: "{}" };
    case "ListRuns":
      return {};
    case "NextBatch":
      return { run_id: runId, step: 0, rank: 0 };
    case "StreamBatches":
      return { run_id: runId, from_step: 0, rank: 0, max_batches: 1 };
    case "ReportSignals":
      return { run_id: runId, step: 0, rank: 0, domain_losses: [{ domain: 0, loss_sum: 1, count: 1 }] };
    case "WatchWeights":
      return { run_id: runId, after_version: 1_000_000 };
    default:
      return { run_id: runId };
  }
}
