/**
 * schedule: weights that change at given steps, either piecewise-constant (each point's
 * weights hold until the next point) or linearly interpolated between points.
 *
 * Params: `points`: [{ step, weights: {domain: w} }, ...] with strictly increasing steps,
 * the first at step 0; `interpolation`: "piecewise" (default) or "linear"; `every`: for
 * linear, steps between versions (default 100) — versions are discrete, so a linear ramp
 * is a staircase of `every`-step treads.
 *
 * A schedule is known in advance, so `init` returns every version as `planned` and the
 * server commits them all at creation; `update` never changes anything. Transfer of a
 * recorded run's versions (replay) uses this strategy too.
 */
import { z } from "zod";
import type { PlannedVersion, Strategy, StrategyContext } from "./types.js";
import { finalizeWeights } from "./util/weights.js";
import { weightsFromMap } from "./static.js";

const point = z.object({
  step: z.number().int().nonnegative(),
  weights: z.record(z.string(), z.number().finite().nonnegative()),
});

const params = z
  .object({
    points: z
      .array(point)
      .min(1)
      .max(100_000)
      .refine((ps) => ps[0]!.step === 0, { message: "the first point must be at step 0" })
      .refine((ps) => ps.every((p, i) => i === 0 || p.step > ps[i - 1]!.step), {
        message: "point steps must be strictly increasing",
      }),
    interpolation: z.enum(["piecewise", "linear"]).default("piecewise"),
    every: z.number().int().positive().default(100),
  })
  .strict();

export type ScheduleParams = z.infer<typeof params>;

/** The scheduled weights at `step` (before bounds). */
export function scheduledWeights(ctx: StrategyContext, p: ScheduleParams, step: number): number[] {
  const names = ctx.domains.map((d) => d.name);
  const pts = p.points;
  let i = 0;
  while (i + 1 < pts.length && pts[i + 1]!.step <= step) i++;
  const a = normalized(weightsFromMap(names, pts[i]!.weights));
  if (p.interpolation === "piecewise" || i + 1 >= pts.length) return a;
  const b = normalized(weightsFromMap(names, pts[i + 1]!.weights));
  const t = (step - pts[i]!.step) / (pts[i + 1]!.step - pts[i]!.step);
  return a.map((x, k) => (1 - t) * x + t * b[k]!);
}

/** Every step at which the schedule's weights change, in order (step 0 excluded). */
export function changeSteps(p: ScheduleParams): number[] {
  const out: number[] = [];
  for (let i = 0; i < p.points.length; i++) {
    const pt = p.points[i]!;
    if (pt.step > 0) out.push(pt.step);
    const next = p.points[i + 1];
    if (p.interpolation === "linear" && next) {
      for (let s = pt.step + p.every; s < next.step; s += p.every) out.push(s);
    }
  }
  return out;
}

function normalized(xs: readonly number[]): number[] {
  const s = xs.reduce((a, b) => a + b, 0);
  return s > 0 ? xs.map((x) => x / s) : xs.map(() => 1 / xs.length);
}

export const scheduleStrategy: Strategy<ScheduleParams, Record<string, never>> = {
  name: "schedule",
  summary: "Piecewise-constant or linearly interpolated weights at given steps.",
  params,
  fixed: true,
  init(ctx, p) {
    const planned: PlannedVersion[] = changeSteps(p).map((s) => ({
      fromStep: s,
      weights: finalizeWeights(scheduledWeights(ctx, p, s), ctx.domains),
    }));
    return { state: {}, weights: finalizeWeights(scheduledWeights(ctx, p, 0), ctx.domains), planned };
  },
  update(_ctx, _p, state) {
    return { state, weights: null };
  },
};
