/**
 * A rank's slice of a step: which of the batch's slots (step, rank, world size) names. The
 * same rule for serving and for reports, so a report always covers the slots its rank was
 * served; a world size that does not divide the batch, or a rank outside it, is refused.
 */
import type { RunConfig } from "../config/schema.js";
import { invalid, outOfRange } from "../errors.js";

export interface SliceGeometry {
  readonly step: number;
  readonly rank: number;
  readonly offset: number;
  readonly slots: number;
  /** The request's world size, or the run's when the request left it 0. */
  readonly worldSize: number;
}

/**
 * Check (step, rank, world size) against the run's config and return the slice geometry.
 * The edge calls this once per request; `Run.serve` and `Run.accept` take the result and
 * never check again (a stream moves `step` within the checked range itself).
 */
export function sliceGeometry(config: RunConfig, step: number, rank: number, worldSize: number): SliceGeometry {
  const ws = worldSize || config.worldSize;
  const b = config.batchSize;
  if (!Number.isSafeInteger(step) || step < 0) throw invalid(`step must be a non-negative integer, got ${step}`);
  if (config.maxSteps > 0 && step >= config.maxSteps) {
    throw outOfRange(`step ${step} is past the end of run "${config.id}" (maxSteps ${config.maxSteps})`);
  }
  if (b % ws !== 0) throw invalid(`world_size ${ws} does not divide the batch size ${b}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= ws) throw invalid(`rank ${rank} is out of range for world_size ${ws}`);
  const slots = b / ws;
  return { step, rank, offset: rank * slots, slots, worldSize: ws };
}
