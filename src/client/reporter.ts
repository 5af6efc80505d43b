/**
 * A signal reporter that never blocks the training step: `report()` enqueues and returns;
 * a background loop sends reports in order, retrying transient failures with backoff.
 * A report the server rejects (bad input) is surfaced by the next `report()` or `flush()`
 * as an exception carrying the server's message, so bugs are not silently dropped.
 */
import * as grpc from "@grpc/grpc-js";
import type { ReportRequest, ReportResult, ReportSink } from "./types.js";

export interface ReporterOptions {
  runId: string;
  rank?: number;
  worldSize?: number;
  /** Reports sent concurrently (default 4). */
  concurrency?: number;
  /** Retries per report for transient errors (default 8). */
  maxRetries?: number;
  /** Called with each acknowledgement (e.g. to watch `version`). */
  onAck?: (step: number, r: ReportResult) => void;
}

const TRANSIENT = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED]);

export class SignalReporter {
  private readonly client: ReportSink;
  private readonly o: ReporterOptions;
  private readonly queue: ReportRequest[] = [];
  private active = 0;
  private error: Error | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Reports acknowledged so far. */
  acked = 0;

  constructor(client: ReportSink, o: ReporterOptions) {
    this.client = client;
    this.o = o;
  }

  /** Queue a report of one step (per-sample losses, per-domain losses and/or eval losses). */
  report(step: number, r: Omit<ReportRequest, "runId" | "step" | "rank" | "worldSize">): void {
    this.throwIfFailed();
    this.queue.push({ ...r, runId: this.o.runId, step, rank: this.o.rank ?? 0, worldSize: this.o.worldSize ?? 0 });
    this.pump();
  }

  /** Wait until every queued report is acknowledged (throws the first rejection). */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.active > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.throwIfFailed();
  }

  /** Reports waiting or in flight. */
  get pending(): number {
    return this.queue.length + this.active;
  }

  private throwIfFailed(): void {
    if (this.error) throw this.error;
  }

  private pump(): void {
    const conc = this.o.concurrency ?? 4;
    while (this.active < conc && this.queue.length > 0) {
      const r = this.queue.shift()!;
      this.active++;
      this.send(r)
        .catch((e: unknown) => {
          this.error ??= new Error(`mixflow: report of step ${r.step} rejected: ${(e as grpc.ServiceError).details ?? String(e)}`);
        })
        .finally(() => {
          this.active--;
          this.pump();
          if (this.active === 0 && this.queue.length === 0) {
            for (const w of this.idleWaiters.splice(0)) w();
          }
        });
    }
  }

  private async send(r: ReportRequest): Promise<void> {
    const max = this.o.maxRetries ?? 8;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.client.reportSignals(r);
        this.acked++;
        this.o.onAck?.(r.step, res);
        return;
      } catch (e) {
        if (!TRANSIENT.has((e as grpc.ServiceError).code) || attempt >= max) throw e;
        await new Promise((res) => setTimeout(res, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }
}
