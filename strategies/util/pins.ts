/**
 * Initial mixtures and pins, shared by the adaptive strategies: the starting distribution
 * from an optional name → weight map, and "the user vouches for this domain" (a pinned
 * domain never drops below its initial share) expressed as a raised lower bound, so the
 * one projection in `finalizeWeights` enforces it.
 */
import type { DomainInfo } from "../types.js";
import { weightsFromMap } from "../static.js";
import { finalizeWeights } from "./weights.js";

/** The initial distribution from an optional name → weight map (uniform if omitted), within bounds. */
export function initialWeights(domains: readonly DomainInfo[], map: Readonly<Record<string, number>> | undefined): number[] {
  return finalizeWeights(
    weightsFromMap(
      domains.map((d) => d.name),
      map,
    ),
    domains,
  );
}

/**
 * Domains with pinned ones' minimum raised to their initial weight. If the raises would
 * push Σ lo past 1 (an initial mixture outside the bounds), they are scaled down to the
 * slack that is left, so the box stays feasible.
 */
export function withPins(domains: readonly DomainInfo[], initial: readonly number[]): DomainInfo[] {
  const extra = domains.map((d, i) => (d.pinned ? Math.max(0, Math.min(d.maxWeight, initial[i] ?? 0) - d.minWeight) : 0));
  const slack = Math.max(0, 1 - domains.reduce((a, d) => a + d.minWeight, 0));
  const need = extra.reduce((a, b) => a + b, 0);
  const scale = need > slack ? slack / need : 1;
  return domains.map((d, i) => (extra[i]! > 0 ? { ...d, minWeight: d.minWeight + extra[i]! * scale } : d));
}
