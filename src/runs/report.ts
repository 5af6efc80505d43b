/**
 * Validating a trainer's report into a normalised `SignalsEvent`. Everything a strategy
 * will see passes through here first: NaN, infinite or negative losses, unknown domains,
 * misaligned arrays and empty reports are rejected with INVALID_ARGUMENT naming the field,
 * before anything is recorded.
 */
import { createHash } from "node:crypto";
import { invalid } from "../errors.js";

/** The parts of ReportSignalsRequest this module reads (proto-loader object shape). */
export interface ReportInput {
  sample_losses?: Buffer | Uint8Array;
  domain_losses?: { domain?: number; loss_sum?: number; count?: number | string }[];
  eval_losses?: Record<string, number>;
  reference_losses?: Buffer | Uint8Array;
}

/** The rank's slice of the step: domain per slot. */
export interface SliceView {
  readonly offset: number;
  readonly domains: Uint32Array;
}

export interface NormalisedReport {
  lossSum: number[];
  count: number[];
  sampleLosses: Float32Array | null;
  refLossSum: number[] | null;
  /** Per-sample reference losses aligned with `sampleLosses`, or null. */
  refLosses: Float32Array | null;
  evalLoss: Record<string, number> | null;
  hash: string;
}

function floats(buf: Buffer | Uint8Array, field: string, slots: number): Float32Array {
  if (buf.byteLength !== slots * 4) {
    throw invalid(`${field}: expected ${slots} float32 values (${slots * 4} bytes) for this rank's ${slots} slots, got ${buf.byteLength} bytes`);
  }
  const copy = new Float32Array(slots);
  new Uint8Array(copy.buffer).set(buf);
  for (let i = 0; i < slots; i++) {
    const v = copy[i]!;
    if (!Number.isFinite(v) || v < 0) throw invalid(`${field}[${i}] is ${v}: losses must be finite and >= 0`);
  }
  return copy;
}

export function normaliseReport(req: ReportInput, slice: SliceView, domainNames: readonly string[]): NormalisedReport {
  const k = domainNames.length;
  const slots = slice.domains.length;
  const lossSum = new Array<number>(k).fill(0);
  const count = new Array<number>(k).fill(0);
  let sampleLosses: Float32Array | null = null;
  const hasSamples = (req.sample_losses?.byteLength ?? 0) > 0;
  const domainLosses = req.domain_losses ?? [];
  if (hasSamples && domainLosses.length > 0) throw invalid("report either sample_losses or domain_losses, not both");
  if (hasSamples) {
    sampleLosses = floats(req.sample_losses!, "sample_losses", slots);
    for (let i = 0; i < slots; i++) {
      const d = slice.domains[i]!;
      lossSum[d]! += sampleLosses[i]!;
      count[d]!++;
    }
  } else {
    const inSlice = new Array<number>(k).fill(0);
    for (let i = 0; i < slots; i++) inSlice[slice.domains[i]!]!++;
    const seen = new Set<number>();
    if (domainLosses.length > k) throw invalid(`domain_losses has ${domainLosses.length} entries but the run has ${k} domains`);
    domainLosses.forEach((dl, j) => {
      const d = dl.domain ?? 0;
      const c = Number(dl.count ?? 0);
      const s = dl.loss_sum ?? 0;
      if (!Number.isInteger(d) || d < 0 || d >= k) throw invalid(`domain_losses[${j}].domain ${d} is not a domain index (0..${k - 1})`);
      if (seen.has(d)) throw invalid(`domain_losses[${j}]: domain ${d} ("${domainNames[d]}") appears twice`);
      seen.add(d);
      if (!Number.isFinite(s) || s < 0) throw invalid(`domain_losses[${j}].loss_sum is ${s}: losses must be finite and >= 0`);
      if (!Number.isInteger(c) || c < 1) throw invalid(`domain_losses[${j}].count must be a positive integer, got ${dl.count}`);
      if (c > inSlice[d]!) {
        throw invalid(`domain_losses[${j}].count ${c} exceeds the ${inSlice[d]} slots of domain "${domainNames[d]}" in this rank's slice`);
      }
      lossSum[d] = s;
      count[d] = c;
    });
  }
  let refLossSum: number[] | null = null;
  let refLosses: Float32Array | null = null;
  if ((req.reference_losses?.byteLength ?? 0) > 0) {
    if (!hasSamples) throw invalid("reference_losses must be aligned per sample and sent together with sample_losses");
    const ref = floats(req.reference_losses!, "reference_losses", slots);
    refLosses = ref;
    refLossSum = new Array<number>(k).fill(0);
    for (let i = 0; i < slots; i++) refLossSum[slice.domains[i]!]! += ref[i]!;
  }
  let evalLoss: Record<string, number> | null = null;
  const ev = req.eval_losses ?? {};
  const evKeys = Object.keys(ev);
  if (evKeys.length > 0) {
    evalLoss = {};
    for (const name of evKeys) {
      const d = domainNames.indexOf(name);
      if (d < 0) throw invalid(`eval_losses: unknown domain "${name}"`);
      const v = ev[name]!;
      if (!Number.isFinite(v) || v < 0) throw invalid(`eval_losses["${name}"] is ${v}: losses must be finite and >= 0`);
      evalLoss[String(d)] = v;
    }
  }
  if (!hasSamples && domainLosses.length === 0 && !evalLoss) {
    throw invalid("empty report: send sample_losses, domain_losses or eval_losses");
  }
  const h = createHash("sha256");
  h.update(JSON.stringify([lossSum, count, refLossSum, evalLoss]));
  if (sampleLosses) h.update(new Uint8Array(sampleLosses.buffer));
  return { lossSum, count, sampleLosses, refLossSum, refLosses, evalLoss, hash: h.digest("hex").slice(0, 32) };
}
