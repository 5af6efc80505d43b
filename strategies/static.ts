/**
 * static: fixed domain weights for the whole run.
 *
 * Params: `weights` — a map domain name → weight (normalised; domains not named get 0),
 * or omitted for uniform. The per-domain bounds still apply.
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";

const params = z
  .object({ weights: z.record(z.string(), z.number().finite().nonnegative()).optional() })
  .strict();

export type StaticParams = z.infer<typeof params>;

/** Resolve a name → weight map against the run's domains (unknown names are rejected at config time). */
export function weightsFromMap(names: readonly string[], map: Readonly<Record<string, number>> | undefined): number[] {
  if (!map) return names.map(() => 1);
  return names.map((n) => map[n] ?? 0);
}

export const staticStrategy: Strategy<StaticParams, Record<string, never>> = {
  name: "static",
  summary: "Fixed weights (uniform if none given).",
  params,
  fixed: true,
  init(ctx, p) {
    const raw = weightsFromMap(
      ctx.domains.map((d) => d.name),
      p.weights,
    );
    return { state: {}, weights: finalizeWeights(raw, ctx.domains) };
  },
  update(_ctx, _p, state) {
    return { state, weights: null };
  },
};
