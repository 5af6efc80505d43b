/**
 * The mixflow.v1.Mixer handlers. Each validates its request at the edge, calls into the
 * run registry, and shapes the response; errors become statuses in `wrap.ts`.
 */
import type * as grpc from "@grpc/grpc-js";
import { invalid } from "../errors.js";
import { parseJson } from "../config/validate.js";
import type { RunRegistry } from "../runs/registry.js";
import type { BatchMsg, Run, RunVersion } from "../runs/run.js";
import type { ReportInput } from "../runs/report.js";
import { runInfoMsg, versionMsg } from "./messages.js";
import { serverStream, unary, type CallObserver } from "./wrap.js";

/** Limits on what one request may ask for. */
const MAX_PREFETCH = 64;
const DEFAULT_PREFETCH = 4;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface StreamTracker {
  /** Register an open stream; returns the function to call when it ends. */
  open(kind: "batches" | "weights", run: string, end: () => void): () => void;
  /** True once shutdown began: streams end at the next step. */
  readonly draining: boolean;
}

interface RunRef {
  run_id?: string;
}

function runId(req: RunRef): string {
  const id = req.run_id ?? "";
  if (id === "") throw invalid("run_id is required");
  if (id.length > 128) throw invalid("run_id is longer than 128 characters");
  return id;
}

function uint(v: unknown, field: string): number {
  const n = typeof v === "number" ? v : Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${field} must be a non-negative integer below 2^53, got ${String(v)}`);
  return n;
}

export function mixerHandlers(reg: RunRegistry, streams: StreamTracker, obs?: CallObserver): grpc.UntypedServiceImplementation {
  return {
    CreateRun: unary("CreateRun", obs, async (req: { config_json?: string }) => {
      const text = req.config_json ?? "";
      if (text === "") throw invalid("config_json is required: the run config as JSON");
      if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw invalid(`config_json is larger than ${MAX_CONFIG_BYTES} bytes`);
      const run = await reg.create(parseJson(text, "config_json"));
      return runInfoMsg(run);
    }),

    GetRun: unary("GetRun", obs, (req: RunRef) => runInfoMsg(reg.get(runId(req)))),

    ListRuns: unary("ListRuns", obs, () => ({ runs: reg.list().map(runInfoMsg) })),

    CloseRun: unary("CloseRun", obs, async (req: RunRef) => runInfoMsg(await reg.close(runId(req)))),

    NextBatch: unary("NextBatch", obs, (req: RunRef & { step?: number; rank?: number; world_size?: number }) =>
      reg.get(runId(req)).batch(uint(req.step, "step"), uint(req.rank, "rank"), uint(req.world_size, "world_size")),
    ),

    StreamBatches: serverStream(
      "StreamBatches",
      obs,
      async (
        req: RunRef & { from_step?: number; rank?: number; world_size?: number; prefetch?: number; max_batches?: number },
        call: grpc.ServerWritableStream<unknown, BatchMsg>,
      ) => {
        const run = reg.get(runId(req));
        const from = uint(req.from_step, "from_step");
        const rank = uint(req.rank, "rank");
        const ws = uint(req.world_size, "world_size");
        const prefetch = Math.min(MAX_PREFETCH, uint(req.prefetch, "prefetch") || DEFAULT_PREFETCH);
        const maxBatches = uint(req.max_batches, "max_batches");
        run.sliceOf(from, rank, ws); // validate before streaming anything
        await streamBatches(run, call, streams, { from, rank, ws, prefetch, maxBatches });
      },
    ),

    ReportSignals: unary(
      "ReportSignals",
      obs,
      async (req: RunRef & ReportInput & { step?: number; rank?: number; world_size?: number }) => {
        const run = reg.get(runId(req));
        const r = await run.report(uint(req.step, "step"), uint(req.rank, "rank"), uint(req.world_size, "world_size"), req);
        return { duplicate: r.duplicate, step_complete: r.stepComplete, version: r.version };
      },
    ),

    GetWeights: unary("GetWeights", obs, (req: RunRef) => {
      const run = reg.get(runId(req));
      return { run_id: run.id, domains: [...run.names], versions: run.versions.map(versionMsg) };
    }),

    WatchWeights: serverStream("WatchWeights", obs, async (req: RunRef & { after_version?: number }, call) => {
      const run = reg.get(runId(req));
      const after = uint(req.after_version, "after_version");
      await watchWeights(run, after, call, streams);
    }),
  };
}

/** Stream batches from `from`, keeping up to `prefetch` assembled ahead, honouring backpressure. */
async function streamBatches(
  run: Run,
  call: grpc.ServerWritableStream<unknown, BatchMsg>,
  streams: StreamTracker,
  o: { from: number; rank: number; ws: number; prefetch: number; maxBatches: number },
): Promise<void> {
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  const untrack = streams.open("batches", run.id, stop);
  call.on("cancelled", stop);
  call.on("close", stop);
  const end = run.config.maxSteps > 0 ? run.config.maxSteps : Infinity;
  const last = o.maxBatches > 0 ? Math.min(end, o.from + o.maxBatches) : end;
  const queue: Promise<BatchMsg>[] = [];
  let next = o.from;
  try {
    while (!stopped && !streams.draining) {
      while (queue.length < o.prefetch && next < last && run.state === "open") {
        const p = run.batch(next++, o.rank, o.ws);
        p.catch(() => undefined); // surfaced when awaited; avoid unhandled rejections on cancel
        queue.push(p);
      }
      const head = queue.shift();
      if (!head) break;
      const msg = await head;
      if (stopped) break;
      if (!call.write(msg)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          call.once("drain", resolve);
        });
        wake = null;
      }
    }
  } finally {
    untrack();
  }
}

async function watchWeights(run: Run, after: number, call: grpc.ServerWritableStream<unknown, unknown>, streams: StreamTracker): Promise<void> {
  for (const v of run.versions) if (v.id > after) call.write(versionMsg(v));
  if (run.state !== "open") return;
  await new Promise<void>((resolve) => {
    const unwatch = run.watch((v: RunVersion | null) => {
      if (v === null) finish();
      else call.write(versionMsg(v));
    });
    const untrack = streams.open("weights", run.id, () => finish());
    function finish(): void {
      unwatch();
      untrack();
      resolve();
    }
    call.on("cancelled", finish);
    call.on("close", finish);
  });
}
