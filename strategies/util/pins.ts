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
 * Domains with pinned ones' minimum raised to their initial weight. Safe: the initial
 * weights are already inside the bounds and sum to 1, so Σ lo stays ≤ 1.
 */
export function withPins(domains: readonly DomainInfo[], initial: readonly number[]): DomainInfo[] {
  return domains.map((d, i) =>
    d.pinned ? { ...d, minWeight: Math.min(d.maxWeight, Math.max(d.minWeight, initial[i] ?? 0)) } : d,
  );
}
