/**
 * temperature: weights ∝ size^(1/T), the sampling used for multilingual pretraining
 * (e.g. Conneau et al. 2020, XLM-R, arXiv 1911.02116, with α = 1/T). T = 1 is
 * proportional to size, T → ∞ approaches uniform.
 *
 * Params: `temperature` (default 2), `sizeBy`: "samples" or "size" (bytes/tokens; default).
 */
import { z } from "zod";
import type { Strategy } from "./types.js";
import { finalizeWeights } from "./util/weights.js";

const params = z
  .object({
    temperature: z.number().finite().positive().default(2),
    sizeBy: z.enum(["size", "samples"]).default("size"),
  })
  .strict();

export type TemperatureParams = z.infer<typeof params>;

export const temperatureStrategy: Strategy<TemperatureParams, Record<string, never>> = {
  name: "temperature",
  summary: "Weights proportional to domain size^(1/T).",
  params,
  fixed: true,
  init(ctx, p) {
    const raw = ctx.domains.map((d) => Math.pow(Math.max(p.sizeBy === "size" ? d.size : d.trainSamples, 0), 1 / p.temperature));
    return { state: {}, weights: finalizeWeights(raw, ctx.domains) };
  },
  update(_ctx, _p, state) {
    return { state, weights: null };
  },
};
