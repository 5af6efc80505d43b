/**
 * The TypeScript client: typed methods for every RPC of mixflow.v1.Mixer, with a deadline
 * on every unary call, a resuming batch iterator (`batches`) and a non-blocking signal
 * reporter (`reporter`).
 */
import * as grpc from "@grpc/grpc-js";
import { loadMixflowProto } from "../contract/index.js";
import { decodeBatch, decodeRunInfo, decodeVersion } from "./decode.js";
import { BatchIterator, type BatchIteratorOptions } from "./batch-iterator.js";
import { SignalReporter, type ReporterOptions } from "./reporter.js";
import type { Batch, ReportRequest, ReportResult, RunInfo, StreamRequest, WeightsVersion } from "./types.js";

export type { ReportRequest } from "./types.js";

export interface ClientOptions {
  /** Deadline for unary calls in ms (default 30 s). */
  deadlineMs?: number;
  /** Channel credentials (default insecure, for loopback). */
  credentials?: grpc.ChannelCredentials;
  /** Bearer token sent as `authorization` metadata. */
  token?: string;
  /** Max message size both ways (default 256 MiB, matching the server). */
  maxMessageBytes?: number;
}


type Wire = Record<string, unknown>;
type Unary = (req: Wire, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Wire) => void) => void;

function f32bytes(x: Float32Array | number[] | undefined): Buffer {
  if (!x) return Buffer.alloc(0);
  const a = x instanceof Float32Array ? x : Float32Array.from(x);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export class MixflowClient {
  /** Every replica this client may use, in order (several for a cluster: docs/cluster.md). */
  readonly addresses: readonly string[];
  private readonly stubs: (grpc.Client & Record<string, unknown>)[] = [];
  private current = 0;
  private readonly makeStub: (address: string) => grpc.Client & Record<string, unknown>;
  private readonly deadlineMs: number;
  private readonly token: string | undefined;

  /**
   * `address` is one host:port, or several (an array or comma-separated) for replicas of
   * one cluster: a call that fails with UNAVAILABLE moves to the next address and is
   * retried there; batches are a pure function of (run, step, rank), so any replica
   * returns the same bytes.
   */
  constructor(address: string | readonly string[], opts: ClientOptions = {}) {
    this.addresses = (typeof address === "string" ? address.split(",") : [...address]).map((a) => a.trim()).filter((a) => a !== "");
    if (this.addresses.length === 0) throw new Error("MixflowClient: no server address given");
    const { grpcObject } = loadMixflowProto();
    const Ctor = ((grpcObject.mixflow as grpc.GrpcObject).v1 as grpc.GrpcObject).Mixer as grpc.ServiceClientConstructor;
    const max = opts.maxMessageBytes ?? 256 * 1024 * 1024;
    this.makeStub = (a) =>
      new Ctor(a, opts.credentials ?? grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": max,
        "grpc.max_send_message_length": max,
      }) as grpc.Client & Record<string, unknown>;
    this.deadlineMs = opts.deadlineMs ?? 30_000;
    this.token = opts.token;
  }

  /** The address calls go to now. */
  get address(): string {
    return this.addresses[this.current]!;
  }

  private get stub(): grpc.Client & Record<string, unknown> {
    return (this.stubs[this.current] ??= this.makeStub(this.address));
  }

  /** Move to the next address (after UNAVAILABLE from this one); no-op with one address. */
  failover(): void {
    this.current = (this.current + 1) % this.addresses.length;
  }

  /** Metadata for a call (bearer token if configured). */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }

  private async call(method: string, req: Wire, deadlineMs = this.deadlineMs): Promise<Wire> {
    for (let tried = 1; ; tried++) {
      const stub = this.stub;
      const fn = (stub[method] as Unary).bind(stub);
      try {
        return await new Promise<Wire>((resolve, reject) =>
          fn(req, this.metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res))),
        );
      } catch (e) {
        if ((e as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || tried >= this.addresses.length) throw e;
        this.failover();
      }
    }
  }

  async createRun(config: unknown): Promise<RunInfo> {
    return decodeRunInfo(await this.call("CreateRun", { config_json: JSON.stringify(config) }));
  }

  async getRun(runId: string): Promise<RunInfo> {
    return decodeRunInfo(await this.call("GetRun", { run_id: runId }));
  }

  async listRuns(): Promise<RunInfo[]> {
    const r = await this.call("ListRuns", {});
    return ((r.runs as Wire[]) ?? []).map(decodeRunInfo);
  }

  async closeRun(runId: string): Promise<RunInfo> {
    return decodeRunInfo(await this.call("CloseRun", { run_id: runId }));
  }

  async nextBatch(runId: string, step: number, rank = 0, worldSize = 0): Promise<Batch> {
    return decodeBatch(await this.call("NextBatch", { run_id: runId, step, rank, world_size: worldSize }));
  }

  /** Raw StreamBatches call (no resume); most callers want `batches`. */
  streamBatchesRaw(req: StreamRequest): grpc.ClientReadableStream<Wire> {
    const fn = (this.stub.StreamBatches as (r: Wire, md: grpc.Metadata) => grpc.ClientReadableStream<Wire>).bind(this.stub);
    return fn(
      {
        run_id: req.runId,
        from_step: req.fromStep,
        rank: req.rank ?? 0,
        world_size: req.worldSize ?? 0,
        prefetch: req.prefetch ?? 0,
        max_batches: req.maxBatches ?? 0,
        pace_by_reports: req.paced ?? false,
      },
      this.metadata(),
    );
  }

  /** Batches from `fromStep` on, resuming after dropped connections (see BatchIterator). */
  batches(opts: BatchIteratorOptions): BatchIterator {
    return new BatchIterator(this, opts);
  }

  async reportSignals(r: ReportRequest): Promise<ReportResult> {
    const res = await this.call("ReportSignals", {
      run_id: r.runId,
      step: r.step,
      rank: r.rank ?? 0,
      world_size: r.worldSize ?? 0,
      sample_losses: f32bytes(r.sampleLosses),
      domain_losses: (r.domainLosses ?? []).map((d) => ({ domain: d.domain, loss_sum: d.lossSum, count: d.count })),
      eval_losses: r.evalLosses ?? {},
      reference_losses: f32bytes(r.referenceLosses),
    });
    return { duplicate: res.duplicate as boolean, stepComplete: res.step_complete as boolean, version: res.version as number };
  }

  /** A background reporter: `report()` never blocks the training step. */
  reporter(opts: ReporterOptions): SignalReporter {
    return new SignalReporter(this, opts);
  }

  async getWeights(runId: string): Promise<{ runId: string; domains: string[]; versions: WeightsVersion[] }> {
    const r = await this.call("GetWeights", { run_id: runId });
    return { runId: r.run_id as string, domains: r.domains as string[], versions: ((r.versions as Wire[]) ?? []).map(decodeVersion) };
  }

  /** New weight versions as they are committed (ends when the run closes). */
  async *watchWeights(runId: string, afterVersion = 0, signal?: AbortSignal): AsyncGenerator<WeightsVersion> {
    const fn = (this.stub.WatchWeights as (r: Wire, md: grpc.Metadata) => grpc.ClientReadableStream<Wire>).bind(this.stub);
    const call = fn({ run_id: runId, after_version: afterVersion }, this.metadata());
    signal?.addEventListener("abort", () => call.cancel());
    try {
      for await (const v of call) yield decodeVersion(v as Wire);
    } catch (e) {
      if ((e as grpc.ServiceError).code === grpc.status.CANCELLED && signal?.aborted) return;
      throw e;
    }
  }

  close(): void {
    for (const s of this.stubs) s?.close();
  }
}
