/**
 * Shared property checks for adaptive strategies: arbitrary finite signals never produce
 * NaN, out-of-bounds or unnormalised weights, and state survives a JSON round trip.
 */
import fc from "fast-check";
import { expect } from "vitest";
import type { AnyStrategy, DomainInfo, StepSignals, StrategyContext } from "../../strategies/types.js";
import { initialWeights, withPins } from "../../strategies/util/pins.js";

/** A context with `k` domains and the given bounds/pins/stats. */
export function ctxOf(domains: Partial<DomainInfo>[], objective: number[] | null = null, batchSize = 32, seed = 7): StrategyContext {
  return {
    batchSize,
    seed,
    objective,
    domains: domains.map((d, i) => ({
      name: `d${i}`,
      trainSamples: 1_000_000,
      evalSamples: 1000,
      size: 1e9,
      minWeight: 0,
      maxWeight: 1,
      pinned: false,
      uniqueClusters: 0,
      compressRatio: 0,
      ...d,
    })),
  };
}

/** Signals of one step with per-domain mean losses and counts. */
export function signalsOf(step: number, meanLoss: readonly number[], count: readonly number[], servedTotal: readonly number[], evalLoss: (number | null)[] | null = null): StepSignals {
  return {
    step,
    lossSum: meanLoss.map((l, i) => l * (count[i] ?? 0)),
    count,
    refLossSum: null,
    evalLoss,
    served: count,
    samples: null,
    servedTotal,
  };
}

const finite = fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true });

/** Arbitrary: a run of steps of arbitrary finite signals over k domains. */
function stepsArb(k: number) {
  return fc.array(
    fc.record({
      loss: fc.array(finite, { minLength: k, maxLength: k }),
      count: fc.array(fc.integer({ min: 0, max: 64 }), { minLength: k, maxLength: k }),
      evalLoss: fc.option(fc.array(fc.option(finite, { nil: null }), { minLength: k, maxLength: k }), { nil: null }),
    }),
    { minLength: 1, maxLength: 25 },
  );
}

/** Bounds that are feasible: sum(min) <= 1 <= sum(max). */
const boundsArb = fc
  .array(fc.tuple(fc.double({ min: 0, max: 0.2, noNaN: true }), fc.double({ min: 0.3, max: 1, noNaN: true }), fc.boolean()), { minLength: 2, maxLength: 6 })
  .filter((bs) => bs.reduce((a, b) => a + b[0], 0) <= 1 && bs.reduce((a, b) => a + b[1], 0) >= 1);

/** Check the weights are a distribution inside the bounds (tolerance 1e-9). */
export function expectValidWeights(w: readonly number[], ctx: StrategyContext): void {
  expect(w.length).toBe(ctx.domains.length);
  let s = 0;
  w.forEach((x, i) => {
    expect(Number.isFinite(x)).toBe(true);
    expect(x).toBeGreaterThanOrEqual(ctx.domains[i]!.minWeight - 1e-9);
    expect(x).toBeLessThanOrEqual(ctx.domains[i]!.maxWeight + 1e-9);
    s += x;
  });
  expect(Math.abs(s - 1)).toBeLessThan(1e-9);
}

/**
 * Property: under arbitrary finite signals and feasible bounds, every proposed weight
 * vector is valid, a pinned domain never drops below its initial share (uniform within the
 * bounds: the parameters here give no `initial`), the state is JSON-stable, and replaying
 * the same signals from the JSON-restored state gives identical weights.
 */
export function checkWeightProperties(strategy: AnyStrategy, rawParams: unknown, numRuns = 60): void {
  const p: unknown = strategy.params.parse(rawParams);
  fc.assert(
    fc.property(
      boundsArb.chain((bs) => fc.tuple(fc.constant(bs), stepsArb(bs.length), fc.boolean())),
      ([bs, steps, withObjective]) => {
        const k = bs.length;
        const ctx = ctxOf(
          bs.map(([lo, hi, pinned], i) => ({ minWeight: lo, maxWeight: hi, pinned, uniqueClusters: i * 50, compressRatio: (i % 3) * 0.45 })),
          withObjective ? [1, ...new Array<number>(k - 1).fill(0)] : null,
        );
        const first = strategy.init(ctx, p);
        expectValidWeights(first.weights, ctx);
        const pinLo = withPins(ctx.domains, initialWeights(ctx.domains, undefined)).map((d) => d.minWeight);
        const expectPins = (w: readonly number[]) =>
          ctx.domains.forEach((d, i) => {
            if (d.pinned) expect(w[i]!).toBeGreaterThanOrEqual(pinLo[i]! - 1e-9);
          });
        expectPins(first.weights);
        let state: unknown = first.state;
        const total = new Array<number>(k).fill(0);
        steps.forEach((st, t) => {
          st.count.forEach((c, i) => (total[i]! += c));
          const sig = signalsOf(t, st.loss, st.count, total.slice(), st.evalLoss);
          const restored: unknown = JSON.parse(JSON.stringify(state));
          expect(restored).toEqual(state);
          const a = strategy.update(ctx, p, state, sig);
          const b = strategy.update(ctx, p, restored, sig);
          expect(b.weights).toEqual(a.weights);
          if (a.weights) {
            expectValidWeights(a.weights, ctx);
            expectPins(a.weights);
          }
          state = a.state;
        });
      },
    ),
    { numRuns, seed: 42 },
  );
}
