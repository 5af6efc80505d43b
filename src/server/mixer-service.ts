/**
 * The mixflow.v1.Mixer handlers. Each first authenticates and authorises the caller
 * (`src/auth`), then validates its request at the edge, applies the per-run and
 * per-connection limits (`src/limits`), calls into the run registry, and shapes the
 * response; errors become statuses in `wrap.ts`.
 */
import type * as grpc from "@grpc/grpc-js";
import { Authorizer } from "../auth/index.js";
import { contractTypes, framingProblem } from "../contract/index.js";
import { invalid } from "../errors.js";
import { runConfig } from "../config/schema.js";
import { parseJson, parseOrThrow } from "../config/validate.js";
import { ConnectionStreams, RunGuards } from "../limits/index.js";
import type { RunRegistry, Run, ServedBatch, SliceGeometry, ReportInput } from "../runs/index.js";
import type { Version } from "../history/events.js";
import { preparingInfoMsg, runInfoMsg, versionMsg } from "./messages.js";
import { serverStream, unary, type CallObserver } from "./wrap.js";

/** Limits on what one request may ask for. */
const MAX_PREFETCH = 64;
const DEFAULT_PREFETCH = 4;
/**
 * Steps an unpaced stream may run past its rank's last report: enough that a trainer
 * reporting asynchronously never waits on it, few enough that the frontier (and so the
 * step at which a new version takes effect) stays near training.
 */
const UNPACED_AHEAD = 256;

/** Auth and limits applied before a request reaches the registry. */
export interface EdgeGuards {
  readonly auth: Authorizer;
  readonly runs: RunGuards;
  readonly streams: ConnectionStreams;
  readonly maxConfigBytes: number;
  readonly maxDomainsPerRun: number;
  readonly maxRanksPerRun: number;
}

/** No auth and the default limits (embedding and tests that do not exercise them). */
export function openEdge(): EdgeGuards {
  return {
    auth: Authorizer.disabled(),
    runs: new RunGuards({ reportsPerSecond: 20_000, maxRanksPerRun: 4096 }),
    streams: new ConnectionStreams(256),
    maxConfigBytes: 4 * 1024 * 1024,
    maxDomainsPerRun: 1024,
    maxRanksPerRun: 4096,
  };
}

/** Marks a request whose bytes did not decode (see `tolerantDeserializers`). */
const MALFORMED = Symbol("malformed");

/**
 * The service definition with request deserialisers that never throw: grpc-js answers a
 * request that fails to decode with INTERNAL, but garbage from a client is the client's
 * error, so the handler answers it with INVALID_ARGUMENT (after authentication). The
 * framing is checked strictly first (src/contract/wire-check.ts).
 */
export function tolerantDeserializers(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const types = contractTypes();
  for (const [name, m] of Object.entries(def)) {
    const typeName = (m as { requestType?: { type?: { name?: string } } }).requestType?.type?.name;
    const type = typeName ? types.lookupType(`mixflow.v1.${typeName}`) : null;
    out[name] = {
      ...m,
      requestDeserialize: (b: Buffer) => {
        // Checked first: the decoder reads a truncated string as the bytes that are there.
        const problem = framingProblem(b, type);
        if (problem !== null) return { [MALFORMED]: problem };
        try {
          return m.requestDeserialize(b);
        } catch (e) {
          return { [MALFORMED]: (e as Error).message };
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

type Scope = "admin" | "run";

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

export function mixerHandlers(
  reg: RunRegistry,
  streams: StreamTracker,
  obs?: CallObserver,
  edge: EdgeGuards = openEdge(),
): grpc.UntypedServiceImplementation {
  /**
   * Authenticate (token only), then reject undecodable requests, then authorise against
   * the request's run. Returns the run id for run-scoped methods.
   */
  function admit(call: { metadata: grpc.Metadata; request: unknown }, method: string, scope: Scope): string {
    const who = edge.auth.authenticate(call.metadata);
    const req = call.request as Record<PropertyKey, unknown>;
    if (req[MALFORMED] !== undefined) throw invalid(`request is not a valid mixflow.v1 ${method} message: ${String(req[MALFORMED])}`);
    const id = scope === "run" ? runId(req as RunRef) : "";
    edge.auth.authorize(who, method, scope === "run" ? id : null);
    return id;
  }

  return {
    CreateRun: unary("CreateRun", obs, async (req: { config_json?: string }, call) => {
      admit(call, "CreateRun", "admin");
      const text = req.config_json ?? "";
      if (text === "") throw invalid("config_json is required: the run config as JSON");
      const bytes = Buffer.byteLength(text);
      if (bytes > edge.maxConfigBytes) throw invalid(`config_json is ${bytes} bytes, above limits.maxConfigBytes (${edge.maxConfigBytes})`);
      const cfg = parseOrThrow(runConfig, parseJson(text, "config_json"), "run config");
      if (cfg.domains.length > edge.maxDomainsPerRun) {
        throw invalid(`run config: domains: ${cfg.domains.length} domains, above limits.maxDomainsPerRun (${edge.maxDomainsPerRun}) of this server`);
      }
      if (cfg.worldSize > edge.maxRanksPerRun) {
        throw invalid(`run config: worldSize: ${cfg.worldSize} ranks, above limits.maxRanksPerRun (${edge.maxRanksPerRun}) of this server`);
      }
      const run = await reg.createChecked(cfg);
      const token = await edge.auth.issueRunToken(run.id);
      return { ...runInfoMsg(run), run_token: token ?? "" };
    }),

    GetRun: unary("GetRun", obs, async (_req: RunRef, call) => {
      const id = admit(call, "GetRun", "run");
      const prep = reg.preparation(id);
      return prep && !reg.has(id) ? preparingInfoMsg(id, prep) : runInfoMsg(await reg.resolve(id));
    }),

    ListRuns: unary("ListRuns", obs, (_req: unknown, call) => {
      admit(call, "ListRuns", "admin");
      return { runs: reg.list().map(runInfoMsg) };
    }),

    CloseRun: unary("CloseRun", obs, async (req: RunRef, call) => {
      admit(call, "CloseRun", "admin");
      return runInfoMsg(await reg.close(runId(req)));
    }),

    NextBatch: unary("NextBatch", obs, async (req: RunRef & { step?: number; rank?: number; world_size?: number }, call) => {
      const run = await reg.resolve(admit(call, "NextBatch", "run"));
      const step = uint(req.step, "step");
      const rank = uint(req.rank, "rank");
      const slice = run.sliceOf(step, rank, uint(req.world_size, "world_size"));
      edge.runs.seeRank(run.id, slice.worldSize, rank);
      return run.serve(slice);
    }),

    StreamBatches: serverStream(
      "StreamBatches",
      obs,
      async (
        req: RunRef & { from_step?: number; rank?: number; world_size?: number; prefetch?: number; max_batches?: number; pace_by_reports?: boolean },
        call: grpc.ServerWritableStream<unknown, ServedBatch>,
      ) => {
        const run = await reg.resolve(admit(call, "StreamBatches", "run"));
        const from = uint(req.from_step, "from_step");
        const rank = uint(req.rank, "rank");
        const ws = uint(req.world_size, "world_size");
        const prefetch = uint(req.prefetch, "prefetch") || DEFAULT_PREFETCH;
        if (prefetch > MAX_PREFETCH) throw invalid(`prefetch ${prefetch} is above the limit of ${MAX_PREFETCH} batches assembled ahead per stream; ask for ${MAX_PREFETCH} or fewer`);
        const maxBatches = uint(req.max_batches, "max_batches");
        const slice = run.sliceOf(from, rank, ws); // validate before streaming anything
        edge.runs.seeRank(run.id, slice.worldSize, rank);
        const release = edge.streams.acquire(call.getPeer());
        try {
          await streamBatches(run, call, streams, { slice, prefetch, maxBatches, paced: req.pace_by_reports === true });
        } finally {
          release();
        }
      },
    ),

    ReportSignals: unary(
      "ReportSignals",
      obs,
      async (req: RunRef & ReportInput & { step?: number; rank?: number; world_size?: number }, call) => {
        const run = await reg.resolve(admit(call, "ReportSignals", "run"));
        edge.runs.takeReport(run.id);
        const step = uint(req.step, "step");
        const rank = uint(req.rank, "rank");
        const slice = run.sliceOf(step, rank, uint(req.world_size, "world_size"));
        edge.runs.seeRank(run.id, slice.worldSize, rank);
        const r = await run.accept(slice, req);
        return { duplicate: r.duplicate, step_complete: r.stepComplete, version: r.version };
      },
    ),

    GetWeights: unary("GetWeights", obs, async (_req: RunRef, call) => {
      const run = await reg.resolve(admit(call, "GetWeights", "run"));
      return { run_id: run.id, domains: [...run.names], versions: run.publishedVersions.map(versionMsg) };
    }),

    WatchWeights: serverStream("WatchWeights", obs, async (req: RunRef & { after_version?: number }, call) => {
      const run = await reg.resolve(admit(call, "WatchWeights", "run"));
      const after = uint(req.after_version, "after_version");
      const release = edge.streams.acquire(call.getPeer());
      try {
        await watchWeights(run, after, call, streams);
      } finally {
        release();
      }
    }),
  };
}

/** Stream batches from `from`, keeping up to `prefetch` assembled ahead, honouring backpressure. */
async function streamBatches(
  run: Run,
  call: grpc.ServerWritableStream<unknown, ServedBatch>,
  streams: StreamTracker,
  o: { slice: SliceGeometry; prefetch: number; maxBatches: number; paced: boolean },
): Promise<void> {
  let stopped = false;
  let wake: (() => void) | null = null;
  const stopSignal = new AbortController();
  const stop = (): void => {
    stopped = true;
    wake?.();
    stopSignal.abort();
  };
  // Checked once by the handler; the steps below stay in [from, maxSteps), so no step needs it again.
  const slice = o.slice;
  const from = slice.step;
  if (o.paced) run.startPacing(slice.offset, slice.slots, from);
  // Paced: `prefetch` steps past the rank's last report. Unpaced: HTTP/2 buffers let a
  // stream run ~1,000 small batches ahead of the trainer; once its rank reports, hold it
  // within the run's lookahead of the last report (a rank that never reports is not held).
  const ahead = o.paced ? o.prefetch : unpacedAhead(run);
  const untrack = streams.open("batches", run.id, stop);
  call.on("cancelled", stop);
  call.on("close", stop);
  // A client that went away while the request was validated never fires those events again.
  if (call.cancelled) stop();
  const end = run.config.maxSteps > 0 ? run.config.maxSteps : Infinity;
  const last = o.maxBatches > 0 ? Math.min(end, from + o.maxBatches) : end;
  const queue: Promise<ServedBatch>[] = [];
  let next = from;
  try {
    while (!stopped && !streams.draining) {
      while (queue.length < o.prefetch && next < last && run.state === "open" && run.mayServeAhead(slice.offset, slice.slots, next, ahead)) {
        const p = run.serve({ ...slice, step: next++ });
        p.catch(() => undefined); // surfaced when awaited; avoid unhandled rejections on cancel
        queue.push(p);
      }
      const head = queue.shift();
      if (!head) {
        if (next >= last || run.state !== "open") break;
        // Paced: this rank is `prefetch` steps past its last report; wait for the next one.
        await run.waitForReport(slice.offset, slice.slots, stopSignal.signal);
        continue;
      }
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

/** How far past its rank's last report an unpaced stream may run (unbounded for fixed weights). */
function unpacedAhead(run: Run): number {
  return run.fixedWeights ? Infinity : Math.min(run.config.maxLookahead, UNPACED_AHEAD);
}

async function watchWeights(run: Run, after: number, call: grpc.ServerWritableStream<unknown, unknown>, streams: StreamTracker): Promise<void> {
  for (const v of run.publishedVersions) if (v.version > after) call.write(versionMsg(v));
  if (run.state !== "open" || call.cancelled) return;
  await new Promise<void>((resolve) => {
    const unwatch = run.watch((v: Version | null) => {
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
