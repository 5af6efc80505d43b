/**
 * Run configs derived from a recorded run, for `mixflow replay serve` and `transfer`.
 *
 * - serve: the recorded config under a new id with the `replay` strategy holding the
 *   recorded versions: it serves the recorded batches bit for bit, records new signals,
 *   and never changes its weights.
 * - transfer: a target run (its own config, or the recorded one under a new id) whose
 *   schedule is the recorded versions (from_steps optionally scaled to the target's
 *   length), or their step-weighted average as static weights — how a proxy run's mixture
 *   is handed to a larger target run (DoReMi's reference → proxy → target workflow).
 */
import type { RunConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import { lastStep, type RunHistory } from "./history.js";

export function replayServeConfig(h: RunHistory, newId: string): RunConfig {
  return {
    ...h.config,
    id: newId,
    strategy: {
      name: "replay",
      params: { versions: h.versions.map((v) => ({ fromStep: v.fromStep, weights: v.weights, competence: v.competence })) },
    },
  };
}

/** Step-weighted average of the versions over steps [0, end). */
export function averageWeights(h: RunHistory, end = Math.max(1, lastStep(h) + 1)): number[] {
  const k = h.versions[0]!.weights.length;
  const acc = new Array<number>(k).fill(0);
  let total = 0;
  h.versions.forEach((v, i) => {
    const next = i + 1 < h.versions.length ? Math.min(end, h.versions[i + 1]!.fromStep) : end;
    const span = Math.max(0, next - Math.min(v.fromStep, end));
    total += span;
    v.weights.forEach((w, d) => (acc[d]! += w * span));
  });
  return total > 0 ? acc.map((x) => x / total) : h.versions[h.versions.length - 1]!.weights.slice();
}

export interface TransferOptions {
  newId: string;
  /** "average": static weights; "schedule": the versions as a schedule. */
  mode: "average" | "schedule";
  /** The target run's config (its domains must be the recorded run's, by name); default: the recorded config. */
  target?: RunConfig;
  /** Multiply recorded from_steps by this (a target that trains longer). Default 1. */
  stepScale?: number;
}

export function transferConfig(h: RunHistory, o: TransferOptions): RunConfig {
  const base = o.target ?? h.config;
  const names = h.config.domains.map((d) => d.name);
  const targetNames = base.domains.map((d) => d.name);
  const missing = targetNames.filter((n) => !names.includes(n));
  if (missing.length) throw invalid(`target domains ${missing.join(", ")} are not in recorded run "${h.runId}"`);
  const byName = (w: readonly number[]): Record<string, number> => Object.fromEntries(names.map((n, i) => [n, w[i]!]));
  if (o.mode === "average") {
    return { ...base, id: o.newId, strategy: { name: "static", params: { weights: byName(averageWeights(h)) } } };
  }
  const scale = o.stepScale ?? 1;
  const points: { step: number; weights: Record<string, number> }[] = [];
  for (const v of h.versions) {
    const step = Math.round(v.fromStep * scale);
    const last = points[points.length - 1];
    if (last && last.step === step) last.weights = byName(v.weights);
    else points.push({ step, weights: byName(v.weights) });
  }
  return { ...base, id: o.newId, strategy: { name: "schedule", params: { points, interpolation: "piecewise" } } };
}
