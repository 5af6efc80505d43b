/**
 * Wire → typed shapes. Byte fields become typed-array views where alignment allows (the
 * common case for buffers grpc-js hands us) and a single aligned copy otherwise.
 */
import type { Batch, EvalProbe, RunInfo, TextBlock, TokenBlock, WeightsVersion } from "./types.js";

type Wire = Record<string, unknown>;

function view<T extends Uint16Array | Uint32Array>(b: Buffer, Ctor: { new (buf: ArrayBufferLike, off: number, len: number): T; new (len: number): T; BYTES_PER_ELEMENT: number }): T {
  const n = b.byteLength / Ctor.BYTES_PER_ELEMENT;
  if (b.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(b.buffer, b.byteOffset, n);
  const copy = new Ctor(n);
  new Uint8Array(copy.buffer).set(b);
  return copy;
}

/** uint64 LE → float64 (exact below 2^53). */
export function u64s(b: Buffer | undefined): Float64Array {
  if (!b || b.length === 0) return new Float64Array(0);
  const n = b.length / 8;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = b.readUInt32LE(i * 8) + b.readUInt32LE(i * 8 + 4) * 4294967296;
  return out;
}

function textBlock(w: Wire | undefined): TextBlock | null {
  if (!w) return null;
  const data = w.data as Buffer;
  const offsets = u64s(w.offsets as Buffer);
  return { data, offsets, at: (i) => data.toString("utf8", offsets[i]!, offsets[i + 1]!) };
}

function tokenBlock(w: Wire | undefined): TokenBlock | null {
  if (!w) return null;
  const dtype = w.dtype === "DTYPE_UINT32" ? "uint32" : "uint16";
  const data = w.data as Buffer;
  return {
    dtype,
    shape: (w.shape as number[]).map(Number),
    data: dtype === "uint16" ? view(data, Uint16Array) : view(data, Uint32Array),
    offsets: u64s(w.offsets as Buffer),
  };
}

export function decodeBatch(w: Wire): Batch {
  const ev = (w.eval as { probes?: Wire[] } | null | undefined)?.probes ?? [];
  const probes: EvalProbe[] = ev.map((p) => ({
    domain: p.domain as number,
    sampleIndices: u64s(p.sample_indices as Buffer),
    text: textBlock(p.text as Wire | undefined),
    tokens: tokenBlock(p.tokens as Wire | undefined),
  }));
  return {
    runId: w.run_id as string,
    step: w.step as number,
    rank: w.rank as number,
    worldSize: w.world_size as number,
    version: w.version as number,
    slotOffset: w.slot_offset as number,
    slots: w.slots as number,
    slotDomains: view(w.slot_domains as Buffer, Uint32Array),
    slotSamples: u64s(w.slot_samples as Buffer),
    text: textBlock(w.text as Wire | undefined),
    tokens: tokenBlock(w.tokens as Wire | undefined),
    evalRequested: w.eval_requested as boolean,
    probes,
    digest: w.digest as string,
  };
}

export function decodeVersion(w: Wire): WeightsVersion {
  return {
    version: w.version as number,
    fromStep: w.from_step as number,
    weights: w.weights as number[],
    reason: w.reason as string,
    committedAtStep: w.committed_at_step as number,
    competence: (w.competence as number[]) ?? [],
  };
}

export function decodeRunInfo(w: Wire): RunInfo {
  return {
    runId: w.run_id as string,
    state: w.state === "RUN_STATE_CLOSED" ? "closed" : w.state === "RUN_STATE_PREPARING" ? "preparing" : "open",
    strategy: w.strategy as string,
    batchSize: w.batch_size as number,
    worldSize: w.world_size as number,
    seed: w.seed as number,
    maxSteps: w.max_steps as number,
    payload: w.payload === "PAYLOAD_KIND_TOKENS" ? "tokens" : "text",
    domains: ((w.domains as Wire[]) ?? []).map((d) => ({
      name: d.name as string,
      trainSamples: d.train_samples as number,
      evalSamples: d.eval_samples as number,
      minWeight: d.min_weight as number,
      maxWeight: d.max_weight as number,
      pinned: d.pinned as boolean,
    })),
    current: w.current ? decodeVersion(w.current as Wire) : { version: 0, fromStep: 0, weights: [], reason: "", committedAtStep: 0, competence: [] },
    frontier: w.frontier as number,
    lastAggregatedStep: w.last_aggregated_step as number,
    resolvedConfig: JSON.parse((w.resolved_config_json as string) || "null"),
    seqLen: w.seq_len as number,
    runToken: (w.run_token as string | undefined) || null,
    preparation: w.preparation
      ? (() => {
          const p = w.preparation as Wire;
          return { phase: p.phase as string, domain: p.domain as string, domainsDone: p.domains_done as number, domainsTotal: p.domains_total as number, elapsedSeconds: p.elapsed_seconds as number };
        })()
      : null,
  };
}
