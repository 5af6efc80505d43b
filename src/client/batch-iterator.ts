/**
 * An async iterator of batches over StreamBatches that survives dropped connections and
 * server restarts: it remembers the last step received and reopens the stream from the
 * next one, with exponential backoff and a bounded number of consecutive retries. Since a
 * batch is a pure function of (run, step, rank), the resumed sequence is exactly the one
 * the first stream would have sent.
 */
import * as grpc from "@grpc/grpc-js";
import { decodeBatch } from "./decode.js";
import type { Batch, BatchStreamSource } from "./types.js";

export interface BatchIteratorOptions {
  runId: string;
  fromStep?: number;
  rank?: number;
  worldSize?: number;
  prefetch?: number;
  /** Stop after this many batches (0 / undefined: until the run ends). */
  maxBatches?: number;
  /**
   * Set when this rank reports signals: the server then stays at most `prefetch` steps ahead
   * of the last reported step, so new weights reach training promptly (default false).
   */
  paced?: boolean;
  /** Consecutive failed reconnects before giving up (default 10). */
  maxRetries?: number;
  /** First backoff delay in ms (default 100), doubled per retry up to 5 s. */
  backoffMs?: number;
}

/** Codes after which reconnecting can help. */
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED]);

export class MixflowRunGoneError extends Error {
  constructor(runId: string, detail: string) {
    super(`run "${runId}" is gone from the server (${detail}); check the run id or recreate the run`);
    this.name = "MixflowRunGoneError";
  }
}

export class BatchIterator implements AsyncIterable<Batch> {
  private readonly client: BatchStreamSource;
  private readonly o: Required<BatchIteratorOptions>;
  /** Next step to receive. */
  nextStep: number;
  /** Reconnects made so far (for logs and tests). */
  reconnects = 0;
  private current: grpc.ClientReadableStream<Record<string, unknown>> | null = null;
  private cancelled = false;

  constructor(client: BatchStreamSource, o: BatchIteratorOptions) {
    this.client = client;
    this.o = {
      runId: o.runId,
      fromStep: o.fromStep ?? 0,
      rank: o.rank ?? 0,
      worldSize: o.worldSize ?? 0,
      prefetch: o.prefetch ?? 4,
      maxBatches: o.maxBatches ?? 0,
      maxRetries: o.maxRetries ?? 10,
      backoffMs: o.backoffMs ?? 100,
      paced: o.paced ?? false,
    };
    this.nextStep = this.o.fromStep;
  }

  /** Stop iterating (the pending stream is cancelled). */
  cancel(): void {
    this.cancelled = true;
    this.current?.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    const end = this.o.maxBatches > 0 ? this.o.fromStep + this.o.maxBatches : Infinity;
    let failures = 0;
    let runEnd = Infinity;
    while (!this.cancelled && this.nextStep < Math.min(end, runEnd)) {
      const stream = this.client.streamBatchesRaw({
        runId: this.o.runId,
        fromStep: this.nextStep,
        rank: this.o.rank,
        worldSize: this.o.worldSize,
        prefetch: this.o.prefetch,
        maxBatches: end === Infinity ? 0 : end - this.nextStep,
        paced: this.o.paced,
      });
      this.current = stream;
      try {
        for await (const w of stream) {
          const b = decodeBatch(w as Record<string, unknown>);
          this.nextStep = b.step + 1;
          failures = 0;
          yield b;
          if (this.cancelled) break;
        }
        if (this.nextStep >= end || this.cancelled) break;
        // The stream ended cleanly before we were done: the run ended, or the server drained.
        const info = await this.client.getRun(this.o.runId).catch(() => null);
        if (info) {
          if (info.state === "closed") break;
          if (info.maxSteps > 0) runEnd = info.maxSteps;
          if (this.nextStep >= runEnd) break;
        }
      } catch (e) {
        const code = (e as grpc.ServiceError).code;
        if (this.cancelled) break;
        if (code === grpc.status.NOT_FOUND) throw new MixflowRunGoneError(this.o.runId, (e as grpc.ServiceError).details);
        if (code === grpc.status.OUT_OF_RANGE) break;
        if (!RETRYABLE.has(code)) throw e;
        // Another replica of a cluster serves the same bytes: resume there.
        if (code === grpc.status.UNAVAILABLE) this.client.failover();
      } finally {
        // Also reached when the consumer stops early (break / return): release the stream,
        // or the server keeps assembling batches for it. A no-op on a finished stream.
        stream.cancel();
        this.current = null;
      }
      failures++;
      if (failures > this.o.maxRetries) {
        throw new Error(`mixflow: lost the batch stream of run "${this.o.runId}" at step ${this.nextStep} and ${this.o.maxRetries} reconnects failed`);
      }
      this.reconnects++;
      await sleep(Math.min(5000, this.o.backoffMs * 2 ** (failures - 1)));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
