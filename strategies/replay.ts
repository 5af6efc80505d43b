/**
 * replay: a recorded run's versions, served exactly — weights, from_steps and curriculum
 * competence as they were journaled — and nothing else. New signals are recorded by the
 * server as for any run, but never change the weights. This is how `mixflow replay serve`
 * re-serves a recorded run bit for bit; `mixflow replay transfer` uses it (or `static`)
 * to hand a proxy run's schedule to a target run.
 *
 * Params: `versions`: [{ fromStep, weights: number[] (one per domain, in the run's domain
 * order), competence?: number[] | null }], the first at step 0.
 */
import { z } from "zod";
import type { Strategy } from "./types.js";

const version = z.object({
  fromStep: z.number().int().nonnegative(),
  weights: z.array(z.number().finite().nonnegative()).min(1),
  competence: z.array(z.number().finite().min(0).max(1)).nullable().optional(),
});

const params = z
  .object({
    versions: z
      .array(version)
      .min(1)
      .refine((vs) => vs[0]!.fromStep === 0, { message: "the first version must start at step 0" })
      .refine((vs) => vs.every((v, i) => i === 0 || v.fromStep >= vs[i - 1]!.fromStep), { message: "fromStep must not decrease" })
      .refine((vs) => vs.every((v) => v.weights.length === vs[0]!.weights.length), { message: "every version needs one weight per domain" }),
  })
  .strict();

export type ReplayParams = z.infer<typeof params>;

export const replayStrategy: Strategy<ReplayParams, Record<string, never>> = {
  name: "replay",
  summary: "A recorded run's versions, exactly (replay serve / transfer); ignores signals.",
  params,
  fixed: true,
  init(ctx, p) {
    if (p.versions[0]!.weights.length !== ctx.domains.length) {
      throw new Error(`replay: versions have ${p.versions[0]!.weights.length} weights but the run has ${ctx.domains.length} domains`);
    }
    const [first, ...rest] = p.versions;
    return {
      state: {},
      weights: first!.weights,
      competence: first!.competence ?? null,
      planned: rest.map((v) => ({ fromStep: v.fromStep, weights: v.weights, competence: v.competence ?? null })),
    };
  },
  update(_ctx, _p, state) {
    return { state, weights: null };
  },
};
